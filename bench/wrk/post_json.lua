-- POST the sign endpoint's JSON body (from BENCH_BODY) and print a summary as one JSON line.
-- BENCH_METHOD=GET sends a plain GET instead (the /healthz baseline).
if os.getenv("BENCH_METHOD") == "GET" then
  wrk.method = "GET"
else
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY") or '{"filename":"photo.jpg","content_type":"image/jpeg","size":1048576}'
  wrk.headers["Content-Type"] = "application/json"
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
