// Package exchange is ddc's piece transfer protocol on libp2p streams.
//
// A client opens one stream to a holder and pipelines requests on it; the
// server answers them in order. Every frame is size-capped:
//
//	request:  uvarint(n) + n bytes of CBOR [type, id, cid, offset, length, bucket, token, proof, guest]
//	response: uvarint(n) + n bytes of CBOR [id, status, size, via], then size raw bytes
//
// A request asks for a whole piece (offset 0, length 0) or a byte range of
// one, in a bucket with a grant's chain and a proof made for this holder
// that the requester holds its key (see Grant), perhaps for a client of
// its own (guest). Statuses say ok, not found, too large, busy, bad
// request, server error or denied (with the words the server's Access
// rule gives); only ok carries bytes, and names in via the bucket the
// piece was served for. Streams have idle deadlines; a server bounds the streams
// each peer may hold open and the piece reads it runs at once, answering
// busy past that. A malformed or oversized frame resets the stream without
// disturbing any other.
//
// Session.Get verifies every whole piece against its CID before returning
// it; a holder that sends other bytes gets a *PeerError wrapping
// pieces.ErrCorrupt, so a fetcher can drop it. Ranges cannot be verified
// alone (the CID hashes the whole piece), so GetRangeUnverified says so in its name.
package exchange
