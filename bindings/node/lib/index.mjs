// SPDX-License-Identifier: MIT
// The package as an ES module: the CommonJS module's exports, each by name,
// and the whole as the default export. It wraps lib/index.js rather than
// copying it, so a program that both imports and requires shmpipe holds one
// module, one addon and one set of classes (instanceof works across both).
import shmpipe from './index.js';

export const {
  createWriter,
  createReader,
  createSyncWriter,
  createSyncReader,
  openWriter,
  openReader,
  openSyncWriter,
  openSyncReader,
  views,
  unlink,
  stat,
  discardEndpoint,
  PipeWriter,
  PipeReader,
  SyncReader,
  SyncWriter,
  ELEMENT_TYPES,
} = shmpipe;

export default shmpipe;
