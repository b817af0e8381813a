package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Reader reads a file from the local store and, for the pieces it lacks,
// from every holder in the cluster. Pieces fetched are verified, kept in
// the store and announced when the Reader is closed.
type Reader struct {
	*pieces.File
	g       *netGetter
	release func() // the hold on the file
}

// NewReader prepares a download of the file c; Open finds its root. Until
// Open returns, only Holders, Search, Stats and Close may be called, so a
// caller can report the search for holders while it goes on.
func (n *Node) NewReader(c cid.Cid) *Reader { return n.NewReaderIn(c, nil) }

// NewReaderIn is NewReader in a bucket (none when in is nil), and for
// whom in says: requests name the bucket and carry a grant for it, pieces
// fetched become members of it here too, and pieces the store holds are
// handed out as the access rule allows (see mayRead).
func (n *Node) NewReaderIn(c cid.Cid, in *In) *Reader {
	// The file is held from GC until Close: a GC while it is read neither
	// takes the cached pieces it has yet to read nor those it fetched and
	// has yet to commit.
	return &Reader{g: n.newGetter(c, in), release: n.repo.Store.Hold(c)}
}

// Open reads the file's root, from the store when it is there and from
// the network otherwise. ctx bounds every later read too.
func (r *Reader) Open(ctx context.Context) error {
	if err := r.g.enter(ctx); err != nil {
		return err
	}
	var get pieces.Getter = r.g
	if r.g.share {
		get = sharedGetter{r.g}
	}
	f, err := pieces.Open(ctx, get, r.g.root)
	if err != nil {
		return err
	}
	f.ReadAhead = r.g.n.opts.ReadAhead
	r.File = f
	r.g.n.repo.Store.Touch(r.g.root) // a cached file read is recently used
	return nil
}

// Open opens the file c, from the store when it is there and from the
// network for what is not. ctx bounds every read; Close ends the download.
func (n *Node) Open(ctx context.Context, c cid.Cid) (*Reader, error) {
	return n.OpenIn(ctx, c, nil)
}

// OpenIn is Open in a bucket (none when in is nil).
func (n *Node) OpenIn(ctx context.Context, c cid.Cid, in *In) (*Reader, error) {
	r := n.NewReaderIn(c, in)
	if err := r.Open(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Stat describes the file c, fetching its descriptors if need be.
func (n *Node) Stat(ctx context.Context, c cid.Cid) (pieces.Stat, error) {
	return n.StatIn(ctx, c, nil)
}

// StatIn is Stat in a bucket (none when in is nil).
func (n *Node) StatIn(ctx context.Context, c cid.Cid, in *In) (pieces.Stat, error) {
	g := n.newGetter(c, in)
	if err := g.enter(ctx); err != nil {
		return pieces.Stat{}, errors.Join(err, g.close())
	}
	st, err := pieces.StatFile(ctx, g, c)
	return st, errors.Join(err, g.close())
}

// Share has the Reader share its fetches with other reads of the node
// that present the same credentials (see flights.go): a gateway's reads
// do. Call it before Open.
func (r *Reader) Share() {
	r.g.mu.Lock()
	r.g.share = true
	r.g.mu.Unlock()
}

// sharedGetter is a shared read's getter: GetPiece only, so the File
// never hands a buffer back to be filled again (it is no PieceReader).
// The slices it returns may be shared with other reads (flights.go) and
// with the keeper, so they are read only, as a File treats them.
type sharedGetter struct{ g *netGetter }

func (s sharedGetter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.g.GetPiece(ctx, c)
}

// Pin marks the file to be pinned when the Reader closes: a get that read
// it whole keeps it like a put does.
func (r *Reader) Pin() { r.g.mu.Lock(); r.g.pin = true; r.g.mu.Unlock() }

// Holders reports the holders a download knows and how many have served
// it pieces so far.
func (r *Reader) Holders() (known, serving int) {
	for _, st := range r.g.fetcher.Stats() {
		if st.Banned != nil {
			continue
		}
		known++
		if st.Pieces > 0 {
			serving++
		}
	}
	return known, serving
}

// Search reports how many peers the download asked for holders so far
// (connected peers probed, DHT peers queried) and whether a search is
// still going on.
func (r *Reader) Search() (asked int, searching bool) {
	r.g.mu.Lock()
	searching = r.g.lookups > 0
	r.g.mu.Unlock()
	return int(r.g.asked.Load()), searching
}

// Stats reports what each remote holder served.
func (r *Reader) Stats() map[peer.ID]exchange.HolderStats {
	return r.g.fetcher.Stats()
}

// Close ends the download: pieces fetched are committed to the store (and
// the root pinned after Pin), then queued for announcing. Reads fetching
// ahead stop first.
func (r *Reader) Close() error {
	if r.File != nil {
		r.File.Close()
	}
	defer r.release() // once what it fetched is committed, and pinned when asked
	return r.g.close()
}

// netGetter is a pieces.Getter over the local store and the network.
type netGetter struct {
	n       *Node
	root    cid.Cid
	in      *In        // the bucket read in and who reads; nil: none, for the operator
	who     reader     // who reads
	creds   creds      // what the read presents, once enter has prepared it
	bucket  *bucket.ID // in's bucket, once enter found its record
	fetcher *exchange.Fetcher
	ctx     context.Context // discovery; ends at close
	cancel  context.CancelFunc
	once    sync.Once // starts discovery on the first miss
	wg      sync.WaitGroup

	keepq  chan kept // to the keeper goroutine; nil until the first fetch
	keeper chan struct{}
	// Owned by the keeper: the store transaction and what it holds.
	tx      *store.Tx
	kept    []cid.Cid
	keptIn  map[bucket.ID]bool // buckets fetched pieces joined, to announce holding data of
	keepErr error

	asked      atomic.Int64 // peers asked for holders: probes and DHT queries
	remembered bool         // the fetcher starts with the holders that served root lately
	started    atomic.Bool  // discovery has started

	mu          sync.Mutex
	keeping     map[*byte]bool        // first bytes of buffers the keeper still reads
	placing     bool                  // data pieces are kept in place, not in blocks (InPlace)
	share       bool                  // fetches are shared with other reads (Share)
	fetchedData map[string]*bucket.ID // placing: the data pieces fetched, and what their holders served them for
	place       *placeReq             // placing: where they lie (KeepInPlace)
	keptPlaced  []cid.Cid             // placing: the pieces indexed in place, to announce
	closed      bool
	pin         bool
	changed     chan struct{} // closed when holders were added or a lookup ended
	lookups     int
	lastLookup  time.Time
	probed      map[peer.ID]bool // connected peers asked whether they hold root
}

var _ pieces.PieceReader = (*netGetter)(nil)

func (n *Node) newGetter(root cid.Cid, in *In) *netGetter {
	g := &netGetter{n: n, root: root, in: in, who: in.reader(), changed: make(chan struct{}), probed: make(map[peer.ID]bool)}
	g.ctx, g.cancel = context.WithCancel(n.ctx)
	f, err := exchange.NewFetcher(n.host, exchange.FetcherOptions{Cluster: n.Cluster(), Logger: n.log, Pool: n.pool, Grant: g.guestGrant()})
	if err != nil {
		panic(fmt.Sprintf("fetcher options checked at Start: %v", err))
	}
	g.fetcher = f
	if peers := n.holders.get(root); len(peers) > 0 {
		f.AddHolders(peers...)
		g.remembered = true
	}
	return g
}

// guestGrant is what a guest's requests carry before enter, and in no
// bucket: the mark that this node's key speaks not for the reader.
func (g *netGetter) guestGrant() *exchange.Grant {
	if !g.who.guest {
		return nil
	}
	return &exchange.Grant{Guest: true}
}

// enter looks up the record of the bucket the getter reads in, checks
// the grant the read presents and sets what its requests carry.
func (g *netGetter) enter(ctx context.Context) error {
	if !g.in.inBucket() {
		return nil
	}
	pr, err := g.n.present(ctx, g.in)
	if err != nil {
		return err
	}
	if err := g.fetcher.SetGrant(pr.grant); err != nil {
		return err
	}
	g.mu.Lock()
	g.bucket, g.creds = &pr.rec.Bucket, pr.creds
	g.mu.Unlock()
	return nil
}

// GetPiece implements pieces.Getter.
func (g *netGetter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	return g.ReadPiece(ctx, c, nil)
}

// ReadPiece implements pieces.PieceReader: the store's copy into buf, or
// a verified copy from the network in a slice of its own. A piece the
// store holds is handed out only as the access rule allows the reader.
func (g *netGetter) ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	if cap(buf) > 0 {
		g.mu.Lock()
		if g.keeping[&buf[:1][0]] {
			buf = nil // a fetched piece the keeper has yet to store
		}
		g.mu.Unlock()
	}
	if !g.who.operator() {
		if _, err := g.n.mayRead(ctx, g.who, c, g.creds); err != nil {
			if errors.Is(err, exchange.ErrBusy) {
				return nil, err
			}
			// Another holder may serve c by a rule this one does not
			// know of (a public file that shares the piece): ask them.
			// Their refusal, or none found, is this node's refusal.
			if data, ferr := g.fetch(ctx, c, buf, false); ferr == nil {
				return data, nil
			}
			return nil, err
		}
	}
	data, err := g.n.repo.Store.ReadPiece(ctx, c, buf)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, pieces.ErrCorrupt):
		g.n.log.Warn("local copy is corrupt; fetching it from the network to replace it", "cid", c, "err", err)
		data, ferr := g.fetch(ctx, c, buf, true)
		if ferr != nil && ctx.Err() == nil {
			// What the user must hear is that their copy is corrupt.
			return nil, fmt.Errorf("%w; no good copy from the network either: %v", err, ferr) // %v: the class is the local copy's
		}
		return data, ferr
	case !errors.Is(err, pieces.ErrNotFound):
		return nil, err
	}
	return g.fetch(ctx, c, buf, false)
}

// fetch gets c from the network, waiting for discovery to find a holder
// for up to FindTimeout. replace says the store's copy of c is corrupt and
// is to be replaced by the one fetched.
func (g *netGetter) fetch(ctx context.Context, c cid.Cid, buf []byte, replace bool) ([]byte, error) {
	if g.remembered && !g.discovering() {
		// The holders that served root lately first: discovery only if
		// they cannot serve c.
		data, err := g.fromHolders(ctx, c, buf, replace)
		if err == nil || !errors.Is(err, pieces.ErrNotFound) || ctx.Err() != nil {
			return data, err
		}
	}
	g.discover(c)
	deadline := time.NewTimer(g.n.opts.FindTimeout)
	defer deadline.Stop()
	var corrupt error // bad bytes a holder sent, dropped with it: the news when none serves
	giveUp := func(err error) error {
		if corrupt != nil && !errors.Is(err, pieces.ErrCorrupt) {
			return fmt.Errorf("%w; before: %w", err, corrupt)
		}
		return err
	}
	for {
		g.mu.Lock()
		changed, searching := g.changed, g.lookups > 0
		g.mu.Unlock()
		data, err := g.fromHolders(ctx, c, buf, replace)
		if err == nil || !errors.Is(err, pieces.ErrNotFound) || ctx.Err() != nil {
			return data, err
		}
		if errors.Is(err, pieces.ErrCorrupt) {
			corrupt = err
		}
		select {
		case <-changed:
			continue // new holders, or a lookup ended: ask again
		default:
		}
		if !searching {
			return nil, giveUp(fmt.Errorf("%w (asked connected peers and the %s cluster's DHT)", err, g.n.Cluster()))
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, giveUp(fmt.Errorf("%w: no holder found within %s", err, g.n.opts.FindTimeout))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// denied adds to a holder's refusal what the operator may do about it:
// the holder says little to a stranger, and the reader knows what it
// presented.
func (g *netGetter) denied(err error) error {
	g.mu.Lock()
	b, token := g.bucket, g.creds.token
	g.mu.Unlock()
	switch {
	case g.who.guest:
		return err
	case b == nil:
		return fmt.Errorf("%w (no grant: a file of a private bucket needs -b BUCKET and a grant)", err)
	case token == "":
		return fmt.Errorf("%w (no grant for bucket %s: pass --token, or hold its owner's key)", err, b)
	}
	return err
}

// fromHolders asks the holders the fetcher knows for c; a piece fetched
// is counted and handed to the keeper. A shared read first joins a fetch
// of c by another read with its credentials, or takes the piece such a
// read fetched (see flights.go).
func (g *netGetter) fromHolders(ctx context.Context, c cid.Cid, buf []byte, replace bool) ([]byte, error) {
	var lead *flight
	if g.share {
		f, leader := g.n.flights.join(flightKey(c, g.in))
		if !leader {
			data, err := f.wait(ctx, buf)
			if err == nil || ctx.Err() != nil {
				return data, err
			}
			// The leader failed with its own holders, which need not be
			// ours: fetch with ours, as a read that shares not.
		} else {
			lead = f
		}
	}
	data, via, err := g.fetchFromHolders(ctx, c, buf)
	if lead != nil {
		shared := data
		if err == nil && cap(buf) > 0 {
			shared = bytes.Clone(data) // buf is the caller's, to be filled again
		}
		g.n.flights.finish(lead, shared, err) // before the keeper, which may wait for the disk
	}
	if err == nil {
		g.keep(kept{c: c, data: data, via: via, replace: replace})
	}
	return data, err
}

// fetchFromHolders asks the holders the fetcher knows for c and counts
// what it got; it also returns the bucket the holder served c for.
func (g *netGetter) fetchFromHolders(ctx context.Context, c cid.Cid, buf []byte) ([]byte, *bucket.ID, error) {
	start := time.Now()
	data, via, err := g.fetcher.Fetch(ctx, c, buf)
	if errors.Is(err, exchange.ErrDenied) {
		return nil, nil, g.denied(err)
	}
	if err != nil {
		return nil, nil, err
	}
	g.n.fetched.Add(uint64(len(data)))
	g.n.metrics.fetchedPiece("exchange", len(data), time.Since(start))
	if via == nil {
		return data, nil, nil
	}
	return data, (*bucket.ID)(via), nil
}

// discovering reports whether discovery has started.
func (g *netGetter) discovering() bool { return g.started.Load() }

func (g *netGetter) inBucket() *bucket.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bucket
}

// Block returns the bytes of the one block c, of any codec, from the
// store or, verified, from the cluster, in bucket in (none when nil). A
// block fetched is kept like the pieces of a read.
func (n *Node) Block(ctx context.Context, c cid.Cid, in *In) ([]byte, error) {
	if err := pieces.CheckCID(c); err != nil {
		return nil, err
	}
	g := n.newGetter(c, in)
	if err := g.enter(ctx); err != nil {
		return nil, errors.Join(err, g.close())
	}
	data, err := g.ReadPiece(ctx, c, nil)
	if err != nil {
		return nil, errors.Join(err, g.close())
	}
	return data, g.close() // after close the keeper is done with data
}
