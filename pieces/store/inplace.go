package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

// Pieces in place. A get that writes a file, or a put of a file that
// stays where it is, need not copy the file's data pieces into block
// files: the index can say "the length bytes at offset in that file"
// instead, as BitTorrent clients serve from what they downloaded and
// Kubo's filestore indexes blocks in the user's files. Such an entry is an
// ordinary one whose block has placedBit set: the rest is the id of a
// placed file, whose record holds its path and identity.
//
// The file is not the store's: the user may change, move or delete it.
// So every read of an in-place piece checks that the path still names the
// file recorded (device, inode, size and modification time, one stat) and
// the piece's CRC, as a block read does. When the identity differs but the
// inode is the same (the file was written to), each piece read is hashed
// against its CID too before it is handed out. A piece that fails is
// dropped from the index; a file that is gone takes all its pieces with
// it. Neither is ever served, and the reader learns which file and CID.
// GC and eviction drop in-place entries like any others and never touch
// the file. Commits sync the file before its entries are indexed, as they
// sync block files, so a crash leaves entries over synced bytes only.

const (
	// placedBit marks an entry whose block is a placed file's id.
	placedBit = 1 << 31

	prefPlace  = 'f' // 'f' + file (4) -> the file's identity (32) + its path
	prefPlaced = 'q' // 'q' + file (4) + CID bytes -> length (4): the piece lies in the file

	// maxOpenPlaced bounds the placed files kept open for reading.
	maxOpenPlaced = 256
)

func (e entry) placed() bool   { return e.block&placedBit != 0 }
func (e entry) fileID() uint32 { return e.block &^ placedBit }

func placeKey(id uint32) []byte { return binary.BigEndian.AppendUint32([]byte{prefPlace}, id) }

func placedKey(id uint32, c cid.Cid) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{prefPlaced}, id), c.Bytes()...)
}

// ident is what says a file is still the one whose bytes were indexed.
type ident struct {
	dev, ino    uint64
	size, mtime int64
}

// sameFile says whether a and b are the same file, whatever its content.
func (a ident) sameFile(b ident) bool { return a.dev == b.dev && a.ino == b.ino }

func (a ident) encode(path string) []byte {
	b := make([]byte, 0, 32+len(path))
	for _, v := range []uint64{a.dev, a.ino, uint64(a.size), uint64(a.mtime)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return append(b, path...)
}

func decodePlace(k, v []byte) (*placedFile, error) {
	if len(k) != 5 || len(v) <= 32 {
		return nil, fmt.Errorf("%w: in-place file record %x", ErrIndexCorrupt, k)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[8*i:]) }
	return &placedFile{id: binary.BigEndian.Uint32(k[1:]), path: string(v[32:]),
		was: ident{dev: u(0), ino: u(1), size: int64(u(2)), mtime: int64(u(3))}}, nil
}

// PlacedError says why a piece kept in place cannot be read as it was
// kept: its file is gone (deleted, moved, replaced), or its bytes there
// changed. A writable store has dropped the piece (with Gone, every piece
// of the file) when it returns one. It is a corrupt piece (ErrCorrupt),
// which a reader that can fetch elsewhere does, and one the store no
// longer holds (ErrNotFound), which is what a holder tells its peers.
type PlacedError struct {
	CID    cid.Cid
	Path   string
	Gone   bool
	Reason string
}

func (e *PlacedError) Error() string {
	return fmt.Sprintf("piece %s kept in place in %s: %s", e.CID, e.Path, e.Reason)
}

// Unwrap makes errors.Is(err, pieces.ErrCorrupt) and
// errors.Is(err, pieces.ErrNotFound) hold.
func (e *PlacedError) Unwrap() []error { return []error{pieces.ErrCorrupt, pieces.ErrNotFound} }

// placedFile is a file some pieces lie in.
type placedFile struct {
	id   uint32
	path string
	was  ident // when its pieces were indexed

	mu sync.Mutex
	f  *os.File // open for reading, once read
}

// placements are the placed files the index records.
type placements struct {
	mu     sync.Mutex
	files  map[uint32]*placedFile
	open   int    // files with f open
	next   uint32 // the next id to hand out
	closed bool   // the store closed: no file is opened again
}

// loadPlaces reads the placed files' records.
func (s *Store) loadPlaces() error {
	s.places.files = make(map[uint32]*placedFile)
	s.places.next = 1
	return s.scanKeys(context.Background(), []byte{prefPlace}, func(k, v []byte) error {
		pf, err := decodePlace(k, v)
		if err != nil {
			return err
		}
		s.places.files[pf.id] = pf
		s.places.next = max(s.places.next, pf.id+1)
		return nil
	})
}

func (p *placements) get(id uint32) *placedFile {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files[id]
}

// take hands out an id for a new placed file.
func (p *placements) take() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= placedBit {
		return 0, errors.New("no in-place file ids left")
	}
	p.next++
	return p.next - 1, nil
}

// reader returns f open on the file the path names, and whether that
// file changed since its pieces were indexed (written to: same inode).
// With gone, the path names no file, or another one; other errors (a
// descriptor limit, an I/O error, a filesystem not mounted) say nothing
// of the file, and drop nothing.
func (p *placements) reader(pf *placedFile) (f *os.File, changed, gone bool, err error) {
	fi, err := os.Stat(pf.path)
	if err != nil {
		return nil, false, errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR), err
	}
	now := identOf(fi)
	if !now.sameFile(pf.was) {
		return nil, false, true, errors.New("the path names another file now (replaced, or moved away)")
	}
	pf.mu.Lock()
	f = pf.f
	pf.mu.Unlock()
	if f == nil {
		if f, err = os.Open(pf.path); err != nil {
			return nil, false, errors.Is(err, fs.ErrNotExist), err
		}
		if ofi, err := f.Stat(); err != nil || !identOf(ofi).sameFile(pf.was) {
			f.Close()
			return nil, false, err == nil, fmt.Errorf("the path names another file now (replaced, or moved away): %v", err)
		}
		if f, err = p.keepOpen(pf, f); err != nil {
			return nil, false, false, err
		}
	}
	return f, now != pf.was, false, nil
}

// keepOpen keeps f as pf's reader and returns the one to read with: f,
// or the one another read kept first. Past maxOpenPlaced open files, one
// other is closed (a read in progress on it fails with ErrClosed, and
// its reader opens it again).
func (p *placements) keepOpen(pf *placedFile, f *os.File) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		f.Close()
		return nil, os.ErrClosed
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f != nil {
		f.Close()
		return pf.f, nil
	}
	if p.open >= maxOpenPlaced {
		for _, o := range p.files {
			if o == pf {
				continue
			}
			o.mu.Lock()
			evicted := o.f != nil
			if evicted {
				o.f.Close()
				o.f = nil
				p.open--
			}
			o.mu.Unlock()
			if evicted {
				break
			}
		}
	}
	pf.f = f
	p.open++
	return f, nil
}

// forget drops pf from the placements, closing its reader.
func (p *placements) forget(pf *placedFile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.files, pf.id)
	pf.mu.Lock()
	if pf.f != nil {
		pf.f.Close()
		pf.f = nil
		p.open--
	}
	pf.mu.Unlock()
}

// closeAll closes every placed file's reader, for good.
func (p *placements) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pf := range p.files {
		pf.mu.Lock()
		if pf.f != nil {
			pf.f.Close()
			pf.f = nil
		}
		pf.mu.Unlock()
	}
	p.open = 0
}

// readPlaced reads piece c from the file e places it in, into buf, and
// checks it (see the top of this file).
func (s *Store) readPlaced(c cid.Cid, e entry, buf []byte, retry int) ([]byte, error) {
	pf := s.places.get(e.fileID())
	if pf == nil {
		return nil, &pieces.CorruptError{CID: c, Reason: fmt.Sprintf("the index places it in file %d, which it does not record", e.fileID())}
	}
	f, changed, gone, err := s.places.reader(pf)
	switch {
	case gone:
		return nil, &PlacedError{CID: c, Path: pf.path, Gone: true, Reason: fmt.Sprintf("the file is gone: %v", err)}
	case err != nil:
		return nil, fmt.Errorf("read %s in place from %s: %w", c, pf.path, err)
	}
	if cap(buf) < int(e.length) {
		buf = make([]byte, e.length)
	}
	buf = buf[:e.length]
	n, err := f.ReadAt(buf, int64(e.offset))
	switch {
	case n < len(buf) && (err == nil || errors.Is(err, io.EOF)):
		return nil, &PlacedError{CID: c, Path: pf.path, Reason: fmt.Sprintf("the file ends before the piece's %d bytes at offset %d (truncated)", e.length, e.offset)}
	case n < len(buf) && errors.Is(err, os.ErrClosed) && retry < 3:
		return s.readPlaced(c, e, buf, retry+1) // closed for another file's reader: open it again
	case n < len(buf):
		return nil, fmt.Errorf("read %s in place from %s: %w", c, pf.path, err)
	}
	if crc32.Checksum(buf, castagnoli) != e.crc {
		return nil, &PlacedError{CID: c, Path: pf.path, Reason: fmt.Sprintf("its %d bytes at offset %d changed since it was kept (checksum mismatch)", e.length, e.offset)}
	}
	if changed {
		// The file was written to since: a CRC says little against
		// edits, so the piece is hashed before it is handed out.
		if err := pieces.Verify(c, buf); err != nil {
			return nil, &PlacedError{CID: c, Path: pf.path, Reason: fmt.Sprintf("the file changed since it was kept, and so did the piece's bytes at offset %d", e.offset)}
		}
	}
	return buf, nil
}

// dropPlaced drops what pe found bad, which the read of entry e found: the
// piece, if e is still its entry, or with pe.Gone every piece of its file
// and the file's record.
func (s *Store) dropPlaced(pe *PlacedError, e entry) {
	if s.opts.ReadOnly {
		return
	}
	cs := []cid.Cid{pe.CID}
	pf := s.places.get(e.fileID())
	if pe.Gone && pf != nil {
		cs = cs[:0]
		err := s.scanKeys(context.Background(), placedKey(e.fileID(), cid.Undef), func(k, _ []byte) error {
			c, err := cid.Cast(k[5:])
			if err == nil {
				cs = append(cs, c)
			}
			return err
		})
		if err != nil {
			s.log.Warn("cannot list the pieces of a gone in-place file", "file", pe.Path, "err", err)
			return
		}
	}
	n, _, err := s.dropWhere(cs, func(got entry) bool { return got.placed() && got.fileID() == e.fileID() && (pe.Gone || got == e) })
	if err != nil {
		s.log.Warn("cannot drop in-place pieces that fail their check", "file", pe.Path, "err", err)
		return
	}
	s.log.Warn("dropped in-place pieces whose file changed or is gone; they are no longer served", "file", pe.Path, "pieces", n, "cid", pe.CID, "why", pe.Reason)
}

// errFound ends a scan that found what it looked for.
var errFound = errors.New("found")

// forgetEmpty drops the records of the placed files ids that hold no
// piece any more, and closes them: the user's disk space comes back once
// they delete the file. A file's pieces are only ever added by the Tx
// that placed it, with its record, so one found empty stays so.
func (s *Store) forgetEmpty(ids map[uint32]bool) {
	for id := range ids {
		pf := s.places.get(id)
		if pf == nil {
			continue
		}
		empty := true
		err := s.scanKeys(context.Background(), placedKey(id, cid.Undef), func([]byte, []byte) error {
			empty = false
			return errFound
		})
		if err != nil && !errors.Is(err, errFound) || !empty {
			continue
		}
		b := new(leveldb.Batch)
		b.Delete(placeKey(id))
		s.cmu.Lock()
		err = s.write(b)
		s.cmu.Unlock()
		if err != nil {
			s.log.Warn("cannot drop the record of an in-place file left without pieces", "file", pf.path, "err", err)
			continue
		}
		s.places.forget(pf)
	}
}

// Placement is a file a Tx keeps pieces of in place (see PutPlaced).
type Placement struct {
	path string
	f    *os.File
	id   uint32
	was  ident // when Place was called: the bytes indexed are the file's then
	used bool  // PutPlaced indexed a piece in it
}

// Place starts keeping pieces in place in f, the file path names by the
// time the Tx commits (a file written under a temporary name may be
// renamed to path first). path must be absolute. The commit syncs f
// before it indexes the pieces, and fails if path names another file then.
func (t *Tx) Place(path string, f *os.File) (*Placement, error) {
	if t.done {
		return nil, ErrClosed
	}
	if err := t.s.refuse; err != nil {
		return nil, err
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("keep pieces in place in %q: not an absolute path", path)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keep pieces in place in %s: %w", path, err)
	}
	id, err := t.s.places.take()
	if err != nil {
		return nil, err
	}
	p := &Placement{path: filepath.Clean(path), f: f, id: id, was: identOf(fi)}
	t.places = append(t.places, p)
	return p, nil
}

// Span is where a piece lies in a placed file, and its CRC.
type Span struct {
	Off    int64
	Length int
	CRC    uint32
}

// SpanOf is the Span of data, a piece's bytes at off.
func SpanOf(off int64, data []byte) Span {
	return Span{Off: off, Length: len(data), CRC: crc32.Checksum(data, castagnoli)}
}

// PutPlaced indexes piece c as the bytes at sp in p's file, unless the
// store already holds c: no copy is written. It makes c a member of the
// Tx's bucket like PutPiece. The caller vouches that c names the bytes
// the file holds there (it hashed or verified them).
func (t *Tx) PutPlaced(p *Placement, c cid.Cid, sp Span) error {
	return t.PutPlacedIn(p, c, sp, t.in())
}

// PutPlacedIn is PutPlaced making c a member of bucket in (NoBucket: of
// no bucket) instead of the Tx's.
func (t *Tx) PutPlacedIn(p *Placement, c cid.Cid, sp Span, in Bucket) error {
	return t.put(c, nil, in, &placedAt{p: p, sp: sp})
}

// placedAt is where PutPlaced found a piece's bytes.
type placedAt struct {
	p  *Placement
	sp Span
}

// syncPlaces makes the bytes of the Tx's placed files durable and checks
// each path still names its file; it returns the records to write.
func (t *Tx) syncPlaces() ([]*placedFile, error) {
	var out []*placedFile
	for _, p := range t.places {
		if !p.used {
			continue
		}
		if err := fdatasync(p.f); err != nil {
			return nil, fmt.Errorf("sync %s, whose pieces are kept in place: %w", p.path, err)
		}
		fi, err := p.f.Stat()
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", p.path, err)
		}
		if identOf(fi) != p.was {
			return nil, fmt.Errorf("keep pieces in place in %s: the file changed while its pieces were indexed", p.path)
		}
		at, err := os.Stat(p.path)
		if err != nil || !identOf(at).sameFile(p.was) {
			return nil, fmt.Errorf("keep pieces in place in %s: the path does not name the file written (%v)", p.path, err)
		}
		out = append(out, &placedFile{id: p.id, path: p.path, was: p.was})
	}
	return out, nil
}

// InPlaceFile is a file holding pieces in place, as the index records it.
type InPlaceFile struct {
	Path   string
	Pieces int
	Bytes  uint64
}

// InPlace lists the files holding pieces in place.
func (s *Store) InPlace(ctx context.Context) ([]InPlaceFile, error) {
	byID := map[uint32]*InPlaceFile{}
	var ids []uint32
	err := s.scanKeys(ctx, []byte{prefPlaced}, func(k, v []byte) error {
		if len(k) < 5 || len(v) != 4 {
			return fmt.Errorf("%w: in-place piece record %x", ErrIndexCorrupt, k)
		}
		id := binary.BigEndian.Uint32(k[1:])
		f := byID[id]
		if f == nil {
			f = &InPlaceFile{Path: fmt.Sprintf("(file %d, unrecorded)", id)}
			if pf := s.places.get(id); pf != nil {
				f.Path = pf.path
			}
			byID[id] = f
			ids = append(ids, id)
		}
		f.Pieces++
		f.Bytes += uint64(binary.BigEndian.Uint32(v))
		return nil
	})
	out := make([]InPlaceFile, 0, len(ids))
	for _, id := range ids {
		out = append(out, *byID[id])
	}
	return out, err
}

// add records files committed.
func (p *placements) add(files []*placedFile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pf := range files {
		p.files[pf.id] = pf // a Tx that places pieces flushes once, at its commit
	}
}

// InPlace is a pieces.Putter for Build over t that indexes the data
// chunks in place in p's file, at the offsets Build reads them from, and
// puts the descriptors into t: a put of a file that stays where it lies.
func (t *Tx) InPlace(p *Placement) pieces.Putter { return placer{t, p} }

type placer struct {
	t *Tx
	p *Placement
}

func (pl placer) PutPiece(c cid.Cid, data []byte) error { return pl.t.PutPiece(c, data) }

func (pl placer) PutChunk(c cid.Cid, off uint64, data []byte) error {
	return pl.t.PutPlaced(pl.p, c, SpanOf(int64(off), data))
}
