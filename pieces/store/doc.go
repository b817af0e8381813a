// Package store is ddc's local block storage: piece bytes live back to back
// in large append-only block files, and a goleveldb index maps each CID to
// (block, offset, length, CRC32C). Bulk bytes stay out of the LSM tree, so a
// put costs one append, one hash and one fdatasync per transaction.
//
// Durability: a Tx appends its pieces to the active block file, and Commit
// syncs the block data before it writes, synchronously, the index batch that
// points at it. A crash can therefore leave bytes no entry points at, never
// an entry without its bytes. Every commit also records the active block and
// its committed end; Open truncates the tail past that end and deletes block
// files created after it, reclaiming what an interrupted put wrote.
//
// Integrity: the CRC32C recorded when a piece is put is checked on every
// read, so a flipped bit on disk is reported as a *pieces.CorruptError
// naming the CID rather than returned as content. The store trusts its
// callers that the CID names the bytes (they hashed or verified them);
// VerifyAll re-hashes everything against the CIDs.
//
// A Store is safe for concurrent use; readers use positional reads and never
// wait for writers. One process at a time may open a directory.
package store
