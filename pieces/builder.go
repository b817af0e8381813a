package pieces

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"
)

// Putter receives the pieces a Builder makes. data is valid only during the
// call: an implementation that keeps it must copy it. Pieces arrive in file
// order, the root descriptor last.
type Putter interface {
	PutPiece(c cid.Cid, data []byte) error
}

// ChunkPutter is an optional extra of a Putter: Build hands it each data
// chunk with the offset of its first byte in the file, as a store that
// indexes the chunks where they lie in the file being put needs. Build
// calls PutChunk instead of PutPiece for chunks, in file order.
type ChunkPutter interface {
	PutChunk(c cid.Cid, off uint64, data []byte) error
}

// BuildOptions says how a file is cut into pieces.
type BuildOptions struct {
	ChunkSize int   // bytes per data piece
	Inline    int   // bytes kept inline in the root (whole file if it fits)
	MaxLinks  int   // links per descriptor before the tree grows a level
	Hash      Hash  // multihash function for every piece
	Tags      []Tag // tags of the root descriptor
	Workers   int   // hashing goroutines; 0 means GOMAXPROCS
	// Chunker says where data pieces are cut: every ChunkSize bytes
	// (fixed, the default) or where the content says (cdc, which ignores
	// ChunkSize; see CDCMinSize).
	Chunker Chunker
	// Progress, when set, is called with the number of bytes consumed so far.
	Progress func(bytes uint64)
}

// DefaultBuildOptions returns the defaults; change fields, then Validate.
func DefaultBuildOptions() BuildOptions {
	return BuildOptions{
		ChunkSize: DefaultChunkSize,
		Inline:    DefaultInline,
		MaxLinks:  DefaultMaxLinks,
		Hash:      DefaultHash,
	}
}

// Validate reports the first option out of range.
func (o BuildOptions) Validate() error {
	if o.ChunkSize < MinChunkSize || o.ChunkSize > MaxPieceSize {
		return fmt.Errorf("chunk size %d out of range [%d, %d]", o.ChunkSize, MinChunkSize, MaxPieceSize)
	}
	if o.Inline < 0 || o.Inline > MaxInline {
		return fmt.Errorf("inline size %d out of range [0, %d]", o.Inline, MaxInline)
	}
	if o.MaxLinks < 2 || o.MaxLinks > MaxLinks {
		return fmt.Errorf("max links %d out of range [2, %d]", o.MaxLinks, MaxLinks)
	}
	if _, err := hashByCode(o.Hash.Code); err != nil || o.Hash.sum == nil {
		return fmt.Errorf("hash %q: %w", o.Hash.Name, ErrUnsupportedHash)
	}
	if o.Chunker != ChunkerFixed && o.Chunker != ChunkerCDC {
		return fmt.Errorf("chunker %v: want fixed or cdc", o.Chunker)
	}
	if o.Workers < 0 {
		return fmt.Errorf("workers %d must not be negative", o.Workers)
	}
	if len(o.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags (max %d)", ErrTooLarge, len(o.Tags), MaxTags)
	}
	for _, t := range o.Tags {
		if err := t.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// BuildResult describes a file the Builder stored.
type BuildResult struct {
	Root   cid.Cid
	Size   uint64 // content bytes
	Pieces int    // pieces written, root and sub-descriptors included
	Depth  int    // descriptor levels below the root (0: links are chunks)
}

// Build reads r to its end, cuts it into pieces, hands them to put and
// returns the root descriptor's CID. Chunks are hashed by Workers goroutines
// in parallel; memory stays bounded by a few chunks whatever r's size.
func Build(ctx context.Context, r io.Reader, put Putter, opt BuildOptions) (BuildResult, error) {
	if err := opt.Validate(); err != nil {
		return BuildResult{}, err
	}
	head := make([]byte, opt.Inline)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return BuildResult{}, fmt.Errorf("read input: %w", err)
	}
	t := &tree{put: put, hash: opt.Hash, maxLinks: opt.MaxLinks}
	size := uint64(n)
	if err == nil { // the head is full: more may follow, unless r ends here
		// A file of exactly the inline size (a tree of small files has
		// many) ends here: one byte more says so without starting the
		// chunk pipeline and its chunk-sized buffers.
		var one [1]byte
		m, perr := io.ReadFull(r, one[:])
		switch {
		case m == 1:
			r = io.MultiReader(bytes.NewReader(one[:]), r)
		case errors.Is(perr, io.EOF):
			err = io.EOF
		default:
			return BuildResult{}, fmt.Errorf("read input: %w", perr)
		}
	}
	if err == nil {
		chunked, err := t.chunks(ctx, r, opt, size)
		if err != nil {
			return BuildResult{}, err
		}
		size += chunked
	}
	links, err := t.finish()
	if err != nil {
		return BuildResult{}, err
	}
	root := Piece{Data: head, Links: links, Tags: opt.Tags}
	b, c, err := root.EncodeCID(opt.Hash)
	if err != nil {
		return BuildResult{}, fmt.Errorf("root descriptor: %w", err)
	}
	if err := put.PutPiece(c, b); err != nil {
		return BuildResult{}, err
	}
	return BuildResult{Root: c, Size: size, Pieces: t.pieces + 1, Depth: t.depth()}, nil
}

type chunk struct {
	seq  int
	data []byte
	cid  cid.Cid
	done func() // hands the chunk's memory back once it is stored
}

// chunks cuts the rest of r into data pieces: one goroutine reads and cuts,
// Workers hash, and this goroutine stores them in order. It returns the
// bytes read.
func (t *tree) chunks(ctx context.Context, r io.Reader, opt BuildOptions, done uint64) (uint64, error) {
	workers := opt.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nbuf := 2*workers + 2
	jobs := make(chan *chunk, nbuf)
	hashed := make(chan *chunk, nbuf)
	send := func(c *chunk) bool {
		select {
		case jobs <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}

	var readErr error
	go func() { // reader
		defer close(jobs)
		if opt.Chunker == ChunkerCDC {
			readErr = readCDC(ctx, r, workers, send)
		} else {
			readErr = readFixed(ctx, r, opt.ChunkSize, nbuf, send)
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range jobs {
				c.cid = opt.Hash.Sum(CodecRaw, c.data)
				select {
				case hashed <- c:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(hashed) }()

	var (
		total   uint64
		next    int
		pending = make(map[int]*chunk, nbuf)
		err     error
	)
	for c := range hashed {
		if err != nil {
			continue // drain so every goroutine exits
		}
		pending[c.seq] = c
		for p, ok := pending[next]; ok; p, ok = pending[next] {
			delete(pending, next)
			next++
			if err = t.putChunk(p.cid, done+total, p.data); err != nil {
				cancel()
				break
			}
			total += uint64(len(p.data))
			p.done()
			if opt.Progress != nil {
				opt.Progress(done + total)
			}
		}
	}
	if err != nil {
		return 0, err
	}
	if readErr != nil {
		return 0, readErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return total, nil
}

// readFixed cuts r into chunks of size bytes (the last may be shorter) in
// nbuf buffers it reuses, and sends them in order.
func readFixed(ctx context.Context, r io.Reader, size, nbuf int, send func(*chunk) bool) error {
	free := make(chan []byte, nbuf)
	for range nbuf {
		free <- nil // allocated on first use, so small files stay small
	}
	for seq := 0; ; seq++ {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return nil
		}
		if buf == nil {
			buf = make([]byte, size)
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 && !send(&chunk{seq: seq, data: buf[:n], done: func() { free <- buf }}) {
			return nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
	}
}

// tree collects links level by level: level 0 holds chunks; a full level is
// wrapped into a sub-descriptor whose link goes one level up. Upper levels
// always cover earlier content than lower ones.
type tree struct {
	put      Putter
	hash     Hash
	maxLinks int
	levels   [][]Link
	pieces   int
}

func (t *tree) putChunk(c cid.Cid, off uint64, data []byte) error {
	var err error
	if cp, ok := t.put.(ChunkPutter); ok {
		err = cp.PutChunk(c, off, data)
	} else {
		err = t.put.PutPiece(c, data)
	}
	if err != nil {
		return err
	}
	t.pieces++
	return t.add(0, Link{CID: c, Size: uint64(len(data))})
}

func (t *tree) add(level int, l Link) error {
	if level == len(t.levels) {
		t.levels = append(t.levels, make([]Link, 0, t.maxLinks))
	}
	if len(t.levels[level]) == t.maxLinks {
		sub, err := t.wrap(t.levels[level])
		if err != nil {
			return err
		}
		t.levels[level] = t.levels[level][:0]
		if err := t.add(level+1, sub); err != nil {
			return err
		}
	}
	t.levels[level] = append(t.levels[level], l)
	return nil
}

func (t *tree) wrap(links []Link) (Link, error) {
	p := Piece{Links: links}
	b, c, err := p.EncodeCID(t.hash)
	if err != nil {
		return Link{}, fmt.Errorf("sub-descriptor: %w", err)
	}
	if err := t.put.PutPiece(c, b); err != nil {
		return Link{}, err
	}
	t.pieces++
	return Link{CID: c, Size: p.ContentSize()}, nil
}

// depth is the number of descriptor levels below the root: the top level's
// links point at subtrees that deep, and the top level is never empty.
func (t *tree) depth() int {
	return max(len(t.levels)-1, 0)
}

// finish folds the lower levels into the top one and returns the root's links.
func (t *tree) finish() ([]Link, error) {
	for i := 0; i < len(t.levels)-1; i++ {
		low, up := t.levels[i], t.levels[i+1]
		if len(low) == 0 {
			continue
		}
		if len(up)+len(low) <= t.maxLinks { // room above: no need for a wrapper
			t.levels[i+1] = append(up, low...)
			t.levels[i] = low[:0]
			continue
		}
		sub, err := t.wrap(low)
		if err != nil {
			return nil, err
		}
		t.levels[i] = low[:0]
		if err := t.add(i+1, sub); err != nil {
			return nil, err
		}
	}
	if len(t.levels) == 0 {
		return nil, nil
	}
	return t.levels[len(t.levels)-1], nil
}
