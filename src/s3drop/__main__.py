from s3drop.cli import main

main()
