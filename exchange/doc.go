// Package exchange is ddc's piece transfer protocol on libp2p streams.
//
// A client opens one stream to a holder and pipelines requests on it; the
// server answers them in order. Every frame is size-capped:
//
//	request:  uvarint(n) + n bytes of CBOR [type, id, cid, offset, length]   n <= 256
//	response: uvarint(n) + n bytes of CBOR [id, status, size], then size raw bytes
//
// A request asks for a whole piece (offset 0, length 0) or a byte range of
// one. Statuses say ok, not found, too large, busy or bad request; only ok
// carries bytes. Streams have idle deadlines; a server bounds the streams
// each peer may hold open and the piece reads it runs at once, answering
// busy past that. A malformed or oversized frame resets the stream without
// disturbing any other.
//
// Session.Get verifies every whole piece against its CID before returning
// it; a holder that sends other bytes gets a *PeerError wrapping
// pieces.ErrCorrupt, so a fetcher can drop it. Ranges cannot be verified
// alone (the CID hashes the whole piece), so GetRange says so in its name.
package exchange
