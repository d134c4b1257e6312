// The workloads of the issue "Performance" run by graphile-worker, so that a figure of ours can
// be set beside a peer's measured on the same machine in the same hour (benchmarks/peers.sh,
// benchmarks/README.md). Each invocation runs one workload once against an empty database and
// prints one JSON line.
//
//   node bench.mjs w1 URL JOBS                    JOBS addJob calls, one after the other, 1 client
//   node bench.mjs w2 URL JOBS                    one addJobs call with JOBS jobs
//   node bench.mjs w3 URL JOBS CONCURRENCY [LOCAL_QUEUE_SIZE] [COMPLETE_BATCH_DELAY_MS]
//                                                 JOBS inserted first, then a worker; jobs/s from
//                                                 its start until none is left (-1: the option unset)
//   node bench.mjs w4 URL JOBS INTERVAL_MS WARMUP an idle worker (concurrency 10, its own process); a job every
//                                                 INTERVAL_MS; defer-to-start percentiles in ms
import pg from "pg";
import { run, makeWorkerUtils } from "graphile-worker";

const [workload, url, ...rest] = process.argv.slice(2);
const noLogs = (await import("graphile-worker")).Logger;
const logger = new noLogs(() => () => {}); // graphile-worker logs every job start otherwise

const utils = await makeWorkerUtils({ connectionString: url, logger });
await utils.migrate();
const args = (i) => ({ n: i, t: 0 });
const seconds = (t0) => (performance.now() - t0) / 1000;
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
let result;

if (workload === "w1") {
  const jobs = Number(rest[0]);
  const t0 = performance.now();
  for (let i = 0; i < jobs; i++) await utils.addJob("noop", args(i));
  const s = seconds(t0);
  result = { workload, jobs, seconds: s, jobsPerSecond: jobs / s };
} else if (workload === "w2") {
  const jobs = Number(rest[0]);
  const specs = Array.from({ length: jobs }, (_, i) => ({ identifier: "noop", payload: args(i) }));
  const t0 = performance.now();
  const added = await utils.addJobs(specs);
  const s = seconds(t0);
  if (added.length !== jobs) throw new Error(`addJobs returned ${added.length} jobs for ${jobs}`);
  result = { workload, jobs, seconds: s, jobsPerSecond: jobs / s };
} else if (workload === "w3") {
  const [jobs, concurrency, localQueue = -1, completeBatchDelay = -1] = rest.map(Number);
  await utils.withPgClient(async (c) => {
    for (let start = 0; start < jobs; start += 10000) {
      const specs = Array.from({ length: Math.min(10000, jobs - start) }, (_, i) => ({ identifier: "noop", payload: args(start + i) }));
      await utils.addJobs(specs);
    }
    await c.query("VACUUM ANALYZE graphile_worker._private_jobs");
    await c.query("CHECKPOINT");
  });
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  const left = async () => (await observer.query("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS e")).rows[0].e;
  const worker = { connectionString: url, concurrentJobs: concurrency, maxPoolSize: Math.max(10, concurrency + 2), pollInterval: 2000 };
  if (localQueue > 1) worker.localQueue = { size: localQueue };
  if (completeBatchDelay >= 0) {
    worker.completeJobBatchDelay = completeBatchDelay;
    worker.failJobBatchDelay = completeBatchDelay;
  }
  let firstJob = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const runner = await run({
    preset: { worker },
    logger,
    noHandleSignals: true,
    taskList: { noop: async () => { if (firstJob === 0) firstJob = performance.now(); } },
  });
  while (await left()) await new Promise((r) => setTimeout(r, 10));
  const end = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await runner.stop();
  await observer.end();
  result = {
    workload, jobs, concurrency, localQueue, completeBatchDelay,
    seconds: (end - t0) / 1000, jobsPerSecond: jobs / ((end - t0) / 1000),
    startToFirstJobMs: firstJob - t0, jobsPerSecondFromFirstJob: jobs / ((end - firstJob) / 1000),
    processCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
} else if (workload === "w4") {
  // The worker in a process of its own, as in our W4; both read the same monotonic clock.
  const [jobs, intervalMs, warmup] = rest.map(Number);
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [process.argv[1], "w4-worker", url, String(warmup + jobs)], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const ready = new Promise((resolve) => child.stdout.on("data", (d) => { output += d; if (output.includes("ready\n")) resolve(); }));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  await ready;
  await new Promise((r) => setTimeout(r, 1000)); // listening
  const sent = [];
  const t0 = performance.now();
  for (let i = 0; i < warmup + jobs; i++) {
    const wait = t0 + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sent.push(process.hrtime.bigint());
    await utils.addJob("noop", args(i));
  }
  const timer = setTimeout(() => child.kill("SIGTERM"), 30000);
  await exited;
  clearTimeout(timer);
  const started = JSON.parse(output.slice(output.indexOf("ready\n") + 6));
  const latencies = [];
  for (let i = warmup; i < warmup + jobs; i++)
    if (started[i] != null) latencies.push(Number(BigInt(started[i]) - sent[i]) / 1e6);
  latencies.sort((a, b) => a - b);
  result = {
    workload, jobs, intervalMs, warmup, started: latencies.length,
    p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95), p99Ms: percentile(latencies, 99), maxMs: latencies.at(-1),
  };
} else if (workload === "w4-worker") {
  // Runs until it has started the given number of jobs (or is killed), then prints their start times.
  const total = Number(rest[0]);
  const started = new Array(total);
  let count = 0;
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  const runner = await run({
    preset: { worker: { connectionString: url, concurrentJobs: 10, pollInterval: 2000 } },
    logger,
    noHandleSignals: true,
    taskList: { noop: async (payload) => { started[payload.n] = String(process.hrtime.bigint()); if (++count === total) done(); } },
  });
  process.on("SIGTERM", () => done());
  process.stdout.write("ready\n");
  await all;
  await runner.stop();
  await utils.release();
  process.stdout.write(JSON.stringify(started));
  process.exit(0);
} else {
  throw new Error(`unknown workload ${workload} (w1, w2, w3, w4)`);
}
await utils.release();
console.log(JSON.stringify(result, (k, v) => (typeof v === "number" && !Number.isInteger(v) ? +v.toFixed(3) : v)));
