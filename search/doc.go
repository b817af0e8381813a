// Package search is ddc's tag search: the query language (exact, prefix,
// range, numeric range and has-tag terms, ANDed), the order-preserving
// encoding the store's tag index uses, the stable order of results and the
// opaque cursor that pages through them, the merge of pages from several
// holders, and the protocol a node asks a bucket's holders with.
//
// A query's first term that can drive an index scan decides the order:
// an exact term first, then a prefix term, then a range term, then a
// has-tag term. Results come sorted by the value of that term's tag, then
// by CID, so every holder of a bucket returns them in the same order and
// pages merge without a global sort.
package search
