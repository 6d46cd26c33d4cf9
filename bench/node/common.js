// SPDX-License-Identifier: MIT
'use strict';
// Shared by the benchmarks: arguments, and a 10 ms timer on the main thread
// whose worst lateness shows how long the event loop was blocked.

function args(spec) {
  const out = { ...spec };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in spec)) throw new Error(`unknown argument ${argv[i]}`);
    const v = argv[++i];
    out[key] = typeof spec[key] === 'number' ? Number(v) : v;
  }
  return out;
}

// Time the main thread spent runnable but waiting for a CPU (ns), from
// /proc: on a machine whose cores are busy with other work, a timer can be
// late without the event loop being blocked at all.
const fs = require('node:fs');
const schedstat = `/proc/self/task/${process.pid}/schedstat`;
function runQueueNs() {
  try {
    return Number(fs.readFileSync(schedstat, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

// A 10 ms timer on the main thread. stop() returns the worst lateness (ms)
// and the worst lateness less the time the thread waited for a CPU meanwhile.
function lagMonitor(periodMs = 10) {
  let last = performance.now();
  let lastRq = runQueueNs();
  let max = 0;
  let maxOwn = 0;
  const tick = () => {
    const now = performance.now();
    const rq = runQueueNs();
    const lag = now - last - periodMs;
    max = Math.max(max, lag);
    maxOwn = Math.max(maxOwn, lag - (rq - lastRq) / 1e6);
    last = now;
    lastRq = rq;
  };
  const timer = setInterval(tick, periodMs);
  return {
    stop() {
      // The time since the last tick counts too: a loop blocked until the
      // end never ran the timer at all.
      tick();
      clearInterval(timer);
      return { max: Math.max(0, max), own: Math.max(0, maxOwn) };
    },
  };
}

module.exports = { args, lagMonitor };
