// Uppy 6.3 for the browser tests: @uppy/core and @uppy/aws-s3 exactly as npm ships them, joined
// into one ES module by esbuild at `npm ci` (the `uppy` bundle on npm stops at 6.0.1, whose
// @uppy/aws-s3 6.1.0 can only PUT). Uppy 5 comes as its own bundle, uppy5/dist/uppy.min.mjs.
export { default as Uppy } from '@uppy/core'
export { default as AwsS3 } from '@uppy/aws-s3'
