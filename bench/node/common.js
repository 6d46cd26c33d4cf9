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

function lagMonitor(periodMs = 10) {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - periodMs);
    last = now;
  }, periodMs);
  return {
    stop() {
      // The time since the last tick counts too: a loop blocked until the
      // end never ran the timer at all.
      max = Math.max(max, performance.now() - last - periodMs);
      clearInterval(timer);
      return Math.max(0, max);
    },
  };
}

module.exports = { args, lagMonitor };
