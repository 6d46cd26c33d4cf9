// SPDX-License-Identifier: MIT
'use strict';
// The seed's worker (seed/worker.js, unchanged) preceded by a 'ready'
// message, so that int32.js times the transfer and not the worker's start,
// as it does for the addon's worker.
require('node:worker_threads').parentPort.postMessage('ready');
require('./seed/worker.js');
