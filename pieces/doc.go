// Package pieces owns ddc's data model: CID-addressed pieces, their canonical
// DAG-CBOR encoding, the file builder that turns a byte stream into a tree of
// pieces, and the seekable file reader that reads one back from any Getter.
//
// A data piece is the raw bytes of one chunk (CIDv1, codec raw). A descriptor
// piece is a file: an optional inline head, ordered links to data pieces or to
// sub-descriptors (each with the number of content bytes under it) and tags,
// encoded as canonical DAG-CBOR (CIDv1, codec dag-cbor). File content is the
// inline data followed by the content of each link in order.
//
// Everything that decodes bytes from disk or the network is strict: a
// descriptor that is not canonical, has unknown fields, trailing bytes or
// over-limit sizes is refused with an error that says what was wrong, so one
// file always has exactly one CID.
package pieces
