package pieces

// Limits and defaults of the data model. Each is part of the wire format or
// of what a reader accepts, so changing one is a format change.
const (
	// MaxPieceSize is the largest piece, data or descriptor, that ddc writes
	// or accepts: 4 MiB keeps one request/response and one verification unit
	// small enough to pipeline, retry and hold in memory per holder.
	MaxPieceSize = 4 << 20

	// DefaultChunkSize is the size of data pieces the builder cuts. 1 MiB
	// balances per-piece overhead (index entry, DHT record, request) against
	// the granularity of seeks and of parallel transfer.
	DefaultChunkSize = 1 << 20

	// MinChunkSize is the smallest chunk size the builder accepts; smaller
	// chunks make descriptors larger than the data they describe.
	MinChunkSize = 256

	// DefaultInline is how many bytes the builder stores inline in the root
	// descriptor: the whole file when it is no larger, else its first bytes
	// (enough for content sniffing and a first byte without a second fetch).
	DefaultInline = 4 << 10

	// MaxInline bounds the inline head so a root descriptor stays small.
	MaxInline = 1 << 20

	// DefaultMaxLinks is the builder's fan-out: a descriptor with more
	// content links is split into a tree. 1024 links encode to ~60 KiB, so a
	// seek decodes little, and a 1 GiB file at 1 MiB chunks fits one level.
	DefaultMaxLinks = 1024

	// MaxLinks is the most links a decoder accepts in one descriptor; it is
	// what fits MaxPieceSize with the largest CIDs we write.
	MaxLinks = 1 << 16

	// MaxTags is the most tags one descriptor may carry.
	MaxTags = 256
	// MaxTagKeyLen is the longest tag key in bytes.
	MaxTagKeyLen = 256
	// MaxTagValueLen is the longest tag value in bytes.
	MaxTagValueLen = 4 << 10
	// MaxLinkNameLen is the longest link name in bytes.
	MaxLinkNameLen = 255

	// MaxTreeDepth bounds how many descriptor levels a reader will descend,
	// so a malicious cyclic-looking or absurdly deep tree cannot exhaust it.
	MaxTreeDepth = 16
)
