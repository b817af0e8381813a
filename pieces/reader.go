package pieces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
)

// Getter returns the bytes of a piece. An implementation guarantees the
// bytes are the piece c names (a store checks what it recorded at write
// time, a network fetcher verifies the hash) and returns an error wrapping
// ErrNotFound when it does not have c, or ErrCorrupt when the bytes are bad.
// The caller must not modify the returned slice.
type Getter interface {
	GetPiece(ctx context.Context, c cid.Cid) ([]byte, error)
}

// PieceReader is an optional extra of a Getter: ReadPiece reads the piece
// into buf, growing it when too small, and returns the filled slice, so a
// sequential reader can reuse a few buffers instead of allocating one per
// chunk. The returned slice is buf or one the caller now owns, never memory
// the implementation keeps. Its guarantees and errors are GetPiece's.
type PieceReader interface {
	ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error)
}

// node is a decoded descriptor with the end offset of each link's content,
// relative to the end of its inline data, for binary search.
type node struct {
	cid  cid.Cid
	raw  []byte // the encoded descriptor
	p    *Piece
	ends []uint64
	size uint64
}

func newNode(c cid.Cid, p *Piece) *node {
	n := &node{cid: c, p: p, ends: make([]uint64, len(p.Links))}
	var off uint64
	for i, l := range p.Links {
		off += l.Size
		n.ends[i] = off
	}
	n.size = uint64(len(p.Data)) + off
	return n
}

// File reads a file's content from its descriptor tree, fetching only the
// pieces a read needs. It is an io.ReadSeeker, io.ReaderAt and io.WriterTo;
// ReadAt may be called concurrently, Read, Seek and CopyRange may not.
// Close stops what reads fetched ahead.
type File struct {
	ctx  context.Context
	get  Getter
	root *node
	pos  int64

	mu     sync.Mutex
	nodes  map[cid.Cid]*node // sub-descriptors, bounded by nodeCacheSize
	recent chunkCache        // the last chunks read, for small sequential reads

	rs *stream // Read's, while reads go on in order

	// ReadAhead is how many chunks CopyRange, WriteTo and reads in order
	// fetch in parallel ahead of the one being read.
	ReadAhead int
	// Budget, when set, bounds the bytes of chunks in flight across the
	// Files that share it.
	Budget Budget
}

const (
	nodeCacheSize = 64
	// DefaultReadAhead chunks in flight during WriteTo: enough to overlap a
	// fetch and its check with writing on a 2-core machine, and to keep a
	// few remote requests outstanding.
	DefaultReadAhead = 4
)

var (
	_ io.ReadSeeker = (*File)(nil)
	_ io.ReaderAt   = (*File)(nil)
	_ io.WriterTo   = (*File)(nil)
	_ io.Closer     = (*File)(nil)
)

// Open fetches and decodes the root descriptor c. ctx bounds every later
// read of the File.
func Open(ctx context.Context, g Getter, c cid.Cid) (*File, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	switch c.Type() {
	case CodecDagCBOR:
	case CodecRaw:
		return nil, fmt.Errorf("%w %s: a data piece (raw), not a file descriptor", ErrInvalidCID, c)
	default:
		return nil, fmt.Errorf("%w %s: codec %s (0x%x) is not a ddc file descriptor (dag-cbor); the gateway serves such a block as it is at /ipfs/<cid>?format=raw", ErrInvalidCID, c, codecName(c.Type()), c.Type())
	}
	n, err := fetchNode(ctx, g, c)
	if err != nil {
		return nil, err
	}
	if n.p.Kind.IsDir() {
		return nil, fmt.Errorf("%w %s: a directory, not a file; list it with `ddc ls`, write it out with `ddc get -o DIR`", ErrIsDir, c)
	}
	return &File{ctx: ctx, get: g, root: n, nodes: make(map[cid.Cid]*node), ReadAhead: DefaultReadAhead}, nil
}

// fetchNode gets descriptor c through g, which checks who may read it,
// and decodes it, or takes the same descriptor decoded before (see
// nodecache.go). A node is never changed once made: Files share them.
func fetchNode(ctx context.Context, g Getter, c cid.Cid) (*node, error) {
	b, err := g.GetPiece(ctx, c)
	if err != nil {
		return nil, err
	}
	if n := decoded.get(c); n != nil && len(n.raw) == len(b) {
		return n, nil
	}
	p, err := Decode(c, b)
	if err != nil {
		return nil, err
	}
	n := newNode(c, p)
	n.raw = b
	decoded.add(n)
	return n, nil
}

// SeekRange moves to offset for reading length bytes (-1: to the end) and
// returns how many bytes the range holds, the length cut at the end of the
// file. An offset past the end is an error wrapping ErrOutOfRange.
func (f *File) SeekRange(offset, length int64) (int64, error) {
	if offset < 0 || offset > f.Size() {
		return 0, fmt.Errorf("%w: offset %d is past the end of %s (%d bytes)", ErrOutOfRange, offset, f.root.cid, f.Size())
	}
	if length < 0 || length > f.Size()-offset {
		length = f.Size() - offset
	}
	f.pos = offset
	return length, nil
}

// Root is the decoded root descriptor (inline data, links, tags).
func (f *File) Root() *Piece { return f.root.p }

// CID is the file's root descriptor CID.
func (f *File) CID() cid.Cid { return f.root.cid }

// Size is the file's length in bytes.
func (f *File) Size() int64 { return int64(f.root.size) }

// Seek implements io.Seeker. Seeking costs nothing until the next read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.Size() + offset
	default:
		return f.pos, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return f.pos, fmt.Errorf("seek: negative position %d", abs)
	}
	f.pos = abs
	return abs, nil
}

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	total := 0
	for len(p) > 0 {
		if off >= f.Size() {
			return total, io.EOF
		}
		n, err := f.readSome(p, uint64(off))
		total += n
		if err != nil {
			return total, err
		}
		p, off = p[n:], off+int64(n)
	}
	return total, nil
}

// readSome copies into p from the one inline head or chunk holding off.
func (f *File) readSome(p []byte, off uint64) (int, error) {
	seg, err := f.locate(off)
	if err != nil {
		return 0, err
	}
	data := seg.data
	if seg.link.CID.Defined() {
		if data, err = f.chunk(seg.link); err != nil {
			return 0, err
		}
	}
	return copy(p, data[seg.skip:seg.end]), nil
}

// segment is a piece of content in file order: inline bytes of a
// descriptor, or a chunk link. Only the bytes [skip, end) of the piece
// belong to the file there (a range link takes part of a chunk), and a
// copy takes the take bytes after skip.
type segment struct {
	desc *node // a descriptor the walk enters; none of the fields below are set
	data []byte
	link Link
	skip uint64
	end  uint64
	take uint64
}

// locate walks one path of the tree, by link sizes, to the segment at
// off, entering range links at their start and ending the segment at the
// end of the narrowest range around it.
func (f *File) locate(off uint64) (segment, error) {
	n := f.root
	if off >= n.size {
		return segment{}, io.EOF
	}
	limit := n.size - off // bytes from off that belong to the file
	for depth := 0; ; depth++ {
		if depth > MaxTreeDepth {
			return segment{}, &CorruptError{CID: f.root.cid, Reason: fmt.Sprintf("tree deeper than %d levels", MaxTreeDepth)}
		}
		if off < uint64(len(n.p.Data)) {
			return segment{data: n.p.Data, skip: off, end: off + min(uint64(len(n.p.Data))-off, limit)}, nil
		}
		off -= uint64(len(n.p.Data))
		i := sort.Search(len(n.ends), func(i int) bool { return n.ends[i] > off })
		if i == len(n.ends) {
			return segment{}, io.EOF
		}
		if i > 0 {
			off -= n.ends[i-1]
		}
		l := n.p.Links[i]
		limit = min(limit, l.Size-off)
		if l.CID.Type() == CodecRaw {
			return segment{link: l, skip: l.Offset + off, end: l.Offset + off + limit}, nil
		}
		child, err := f.node(l)
		if err != nil {
			return segment{}, err
		}
		n, off = child, l.Offset+off
	}
}

// node returns the decoded sub-descriptor l points at, checking its size
// against l on every use: two links may share a cached node and want
// different ranges of it.
func (f *File) node(l Link) (*node, error) {
	f.mu.Lock()
	n, ok := f.nodes[l.CID]
	f.mu.Unlock()
	if !ok {
		var err error
		if n, err = fetchNode(f.ctx, f.get, l.CID); err != nil {
			return nil, err
		}
		if n.p.Kind != KindFile {
			return nil, &CorruptError{CID: l.CID, Reason: fmt.Sprintf("a file links to a %s piece", n.p.Kind)}
		}
		f.mu.Lock()
		if len(f.nodes) >= nodeCacheSize {
			for k := range f.nodes { // drop an arbitrary entry: seeks rarely revisit
				delete(f.nodes, k)
				break
			}
		}
		f.nodes[l.CID] = n
		f.mu.Unlock()
	}
	if n.size < l.Offset+l.Size {
		return nil, &CorruptError{CID: l.CID, Reason: fmt.Sprintf("descriptor covers %d bytes, its link wants bytes %d to %d", n.size, l.Offset, l.Offset+l.Size)}
	}
	return n, nil
}

// chunk returns the bytes of the data piece l points at, checking its size
// against l on every use, cached or not.
func (f *File) chunk(l Link) ([]byte, error) {
	f.mu.Lock()
	data, ok := f.recent.get(l.CID)
	f.mu.Unlock()
	if !ok {
		var err error
		if data, err = fetchChunk(f.ctx, f.get, l); err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.recent.add(l.CID, data)
		f.mu.Unlock()
	}
	if err := checkChunk(l, data); err != nil {
		return nil, err
	}
	return data, nil
}

func fetchChunk(ctx context.Context, g Getter, l Link) ([]byte, error) {
	return fetchChunkInto(ctx, g, l, nil)
}

// fetchChunkInto fetches into buf when g is a PieceReader.
func fetchChunkInto(ctx context.Context, g Getter, l Link, buf []byte) ([]byte, error) {
	var data []byte
	var err error
	if pr, ok := g.(PieceReader); ok && buf != nil {
		data, err = pr.ReadPiece(ctx, l.CID, buf)
	} else {
		data, err = g.GetPiece(ctx, l.CID)
	}
	if err != nil {
		return nil, err
	}
	if err := checkChunk(l, data); err != nil {
		return nil, err
	}
	return data, nil
}

// checkChunk says whether data holds the bytes l wants of it.
func checkChunk(l Link, data []byte) error {
	if uint64(len(data)) < l.Offset+l.Size {
		return &CorruptError{CID: l.CID, Reason: fmt.Sprintf("chunk has %d bytes, its link wants bytes %d to %d", len(data), l.Offset, l.Offset+l.Size)}
	}
	return nil
}

// chunkCache keeps the last two chunks read: sequential reads with small
// buffers hit the same chunk many times, and a reader straddling a chunk
// boundary alternates between two.
type chunkCache struct {
	cids [2]cid.Cid
	data [2][]byte
	next int
}

func (c *chunkCache) get(k cid.Cid) ([]byte, bool) {
	for i := range c.cids {
		if c.data[i] != nil && c.cids[i] == k {
			return c.data[i], true
		}
	}
	return nil, false
}

func (c *chunkCache) add(k cid.Cid, data []byte) {
	c.cids[c.next], c.data[c.next] = k, data
	c.next = (c.next + 1) % len(c.cids)
}

// errStop ends a walk early without an error.
var errStop = errors.New("stop walk")

// codecName is the multicodec name of code, or "unknown".
func codecName(code uint64) string {
	if name := multicodec.Code(code).String(); !strings.HasPrefix(name, "Code(") {
		return name
	}
	return "unknown"
}
