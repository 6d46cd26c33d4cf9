// SPDX-License-Identifier: MIT
// The same package from an ES module: the default export is the whole
// module, and every name is also exported by itself (lib/index.mjs).
import shmpipe, { createSyncWriter, openSyncReader, ELEMENT_TYPES } from 'shmpipe';
import * as named from 'shmpipe';
import type { ElementType, SyncReader, SyncWriter } from 'shmpipe';

const writer: SyncWriter = shmpipe.createSyncWriter({ elementType: 'uint16', capacity: 16 });
const reader: SyncReader = named.openSyncReader(writer.endpoint());
writer.write([1, 2, 3]);
const room: Buffer = writer.reserve(2);
room.writeUInt16LE(4);
writer.commit(2);
writer.close();
for (const value of reader) console.log(value);
reader.close();

const again: SyncWriter = createSyncWriter();
openSyncReader(again.endpoint()).close();
again.close();

const types: readonly ElementType[] = shmpipe.ELEMENT_TYPES === ELEMENT_TYPES ? ELEMENT_TYPES : [];
console.log(types, shmpipe.views === named.views, shmpipe.SyncReader === named.SyncReader);
