// SPDX-License-Identifier: MIT
// Misuses of shmpipe that index.d.ts must refuse: compiled apart from the
// example (tsconfig.wrong.json), each marked line must give exactly the
// error named at its end, and no other line any, so that a compiler that
// sees no types at all cannot pass for one that checks them.
import { createWriter, createSyncReader, createSyncWriter, openSyncReader, PipeWriter, stat } from 'shmpipe';

createWriter({ capacity: '8' }); // error TS2322
createWriter({ elementType: 'string' }); // error TS2322
createWriter({ capacity: 8, size: 8 }); // error TS2353
const reader = createSyncReader();
reader.read('1024'); // error TS2345
reader.readInto(new DataView(new ArrayBuffer(8))); // error TS2345
const value: number = reader.readValue(); // error TS2322
openSyncReader(reader.endpoint(), { capacity: 8 }); // error TS2353
openSyncReader(42); // error TS2345
createSyncWriter().elementType; // error TS2339
stat('/name').capacity.toUpperCase(); // error TS2339
new PipeWriter(); // error TS2673
console.log(value);
createWriter().reserve(1).length; // error TS2339
createWriter({ readers: '3' }); // error TS2322
createSyncReader({ readers: 2 }); // error TS2353
const attached: number = createWriter({ readers: 2 }).waitReaders(); // error TS2322
createSyncWriter().waitReaders('all'); // error TS2345
console.log(attached);
createWriter({ records: true, share: 'yes', readers: 2 }); // error TS2322
const taken: number = createSyncReader().seq; // error TS2322
openSyncReader(createSyncWriter().endpoint(), { withSeq: true }); // error TS2353
console.log(taken);
