package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Names, each constant with why.
const (
	// DefaultNameTTL is how long a resolved name is answered from the
	// cache: a new version reaches the connected peers and the bucket's
	// holders at once (pushed), and every other node within this.
	DefaultNameTTL = time.Minute
	// DefaultNameRepublish is how often the keepers of a name put it in
	// the DHT again: well within the 36 hours DHT nodes keep a value.
	DefaultNameRepublish = 4 * time.Hour
	// namePublishLookup bounds how long a publish asks the DHT for a
	// newer version than the node knows, so a publish returns within a
	// second; the sequence numbers of a name one node publishes are its
	// own to count.
	namePublishLookup = 400 * time.Millisecond
	// namePutTimeout bounds a publish's put in the DHT.
	namePutTimeout = 5 * time.Second
	// nameLookupTimeout bounds a lookup of a name in the background.
	nameLookupTimeout = 15 * time.Second
	// maxNameLog bounds the versions a log walks.
	maxNameLog = 10000
)

// Name errors.
var (
	// ErrNoName means no record of a name was found: not kept here, and
	// the peers closest to its key in the DHT have none. It is a
	// pieces.ErrNotFound too.
	ErrNoName error = noName{}
	// ErrStaleName means a record older than the version the node knows.
	ErrStaleName = errors.New("stale name record")
)

type noName struct{}

func (noName) Error() string        { return "no record of it in the cluster" }
func (noName) Is(target error) bool { return target == pieces.ErrNotFound }

// NameQuery says which name: in a bucket (In names it), of an account
// (Account), or of the repo's key named Key (neither).
type NameQuery struct {
	In      *In
	Account *bucket.PublicKey
	Key     string // a keystore name; "" is the node's own key
	Name    string
}

// scope is the query's name scope and normalized name.
func (n *Node) scope(q NameQuery) (bucket.NameScope, string, error) {
	name := bucket.NormalizeName(q.Name)
	if err := bucket.CheckName(name); err != nil {
		return bucket.NameScope{}, name, err
	}
	switch {
	case q.In.inBucket():
		return bucket.NameScope{Bucket: q.In.Bucket}, name, nil
	case q.Account != nil:
		return bucket.NameScope{Account: *q.Account}, name, nil
	}
	key, err := n.nameKey(q.Key)
	if err != nil {
		return bucket.NameScope{}, name, err
	}
	return bucket.NameScope{Account: key.Public()}, name, nil
}

// nameKey is the keystore's key called name ("": the node's own).
func (n *Node) nameKey(name string) (bucket.PrivateKey, error) {
	if name == "" {
		name = repo.SelfKey
	}
	ks, err := repo.Keys(n.repo.Path)
	if err != nil {
		return bucket.PrivateKey{}, err
	}
	return ks.Get(name)
}

// Resolved is a name's record and where the node found it.
type Resolved struct {
	Record bucket.NameRecord
	Source string // "cache", "kept" (this node keeps the name) or "dht"
}

// names is the node's cache of resolved names.
type names struct {
	ttl         time.Duration
	republish   time.Duration
	republished atomic.Uint64 // records put in the DHT again

	mu sync.Mutex
	m  map[bucket.NameID]*nameEntry
}

type nameEntry struct {
	rec        bucket.NameRecord
	checked    time.Time // when a lookup or push last gave it
	refreshing bool
}

// newest returns the cached record of id, and whether it is within the
// TTL.
func (ns *names) newest(id bucket.NameID) (bucket.NameRecord, bool, bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	e := ns.m[id]
	if e == nil {
		return bucket.NameRecord{}, false, false
	}
	return e.rec, true, time.Since(e.checked) < ns.ttl
}

// offer caches r, checked now, unless a newer version is cached; it
// reports whether r is the newest the cache has.
func (ns *names) offer(id bucket.NameID, r bucket.NameRecord) bool {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.m == nil {
		ns.m = make(map[bucket.NameID]*nameEntry)
	}
	e := ns.m[id]
	switch {
	case e == nil:
		ns.m[id] = &nameEntry{rec: r, checked: time.Now()}
	case bucket.NewerName(r, e.rec):
		e.rec, e.checked = r, time.Now()
	case r.CID() == e.rec.CID():
		e.checked = time.Now()
	default:
		return false
	}
	return true
}

// ResolveName returns the newest record of the name q asks that the node
// finds soon: from its cache within the TTL; otherwise the newer of the
// one it keeps and the first valid record the DHT's closest peers give,
// while a full lookup refreshes the cache in the background. fresh skips
// the cache and the kept record and asks the DHT. A guest (a gateway
// client) resolves a private bucket's names only with a grant of get.
func (n *Node) ResolveName(ctx context.Context, q NameQuery, fresh bool) (Resolved, error) {
	s, name, err := n.scope(q)
	if err != nil {
		return Resolved{}, err
	}
	if err := n.nameAccess(ctx, q.In, s); err != nil {
		return Resolved{}, err
	}
	id := bucket.NameIDOf(s, name)
	cached, have, current := n.names.newest(id)
	if have && current && !fresh {
		return Resolved{cached, "cache"}, nil
	}
	var best Resolved
	if !fresh {
		if have {
			best = Resolved{cached, "cache"}
		}
		if kept, err := n.keptName(id); err == nil && (best.Record.Seq == 0 || bucket.NewerName(kept, best.Record)) {
			best = Resolved{kept, "kept"}
		}
	}
	n.waitRouting(ctx)
	found, lerr := n.dht.GetName(ctx, id, true)
	if lerr == nil && (best.Record.Seq == 0 || bucket.NewerName(found, best.Record)) {
		best = Resolved{found, "dht"}
	}
	if best.Record.Seq == 0 {
		if errors.Is(lerr, dht.ErrNoRecord) {
			return best, fmt.Errorf("name %q of %s: %w", name, s, ErrNoName)
		}
		return best, fmt.Errorf("name %q of %s: %w", name, s, lerr)
	}
	n.names.offer(id, best.Record)
	n.refreshName(id)
	return best, nil
}

// nameAccess applies the access rule to a guest's read of a bucket's
// names, as to its files: the operator, and anyone for an account's name
// or a public bucket's, may resolve.
func (n *Node) nameAccess(ctx context.Context, in *In, s bucket.NameScope) error {
	if in == nil || !in.Guest || s.Bucket == (bucket.ID{}) {
		return nil
	}
	pr, err := n.present(ctx, in)
	if err != nil {
		return err
	}
	return n.mayReadBucket(ctx, in.reader(), pr.rec.Bucket, pr.creds)
}

// refreshName looks id up in full in the background, unless a lookup
// runs, and caches what it finds.
func (n *Node) refreshName(id bucket.NameID) {
	n.names.mu.Lock()
	e := n.names.m[id]
	if e == nil || e.refreshing {
		n.names.mu.Unlock()
		return
	}
	e.refreshing = true
	n.names.mu.Unlock()
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, nameLookupTimeout)
		defer cancel()
		if r, err := n.dht.GetName(ctx, id, false); err == nil {
			n.names.offer(id, r)
			n.keepIfKeeper(r)
		}
		n.names.mu.Lock()
		e.refreshing = false
		n.names.mu.Unlock()
	})
}

// keptName is the record of id the repo keeps.
func (n *Node) keptName(id bucket.NameID) (bucket.NameRecord, error) {
	hs, err := repo.Names(n.repo.Path)
	if err != nil {
		return bucket.NameRecord{}, err
	}
	return hs.Get(id)
}

// keeper reports whether this node keeps, and republishes, the names of
// scope: its own account's, or a bucket's whose owner key the repo holds
// or of which the store keeps files.
func (n *Node) keeper(s bucket.NameScope) bool {
	ks, err := repo.Keys(n.repo.Path)
	if err != nil {
		return false
	}
	if s.Bucket == (bucket.ID{}) {
		_, ok, _ := ks.Owned(s.Account)
		return ok
	}
	if rec, ok := n.records.get(s.Bucket); ok {
		if _, owned, _ := ks.Owned(rec.Owner); owned {
			return true
		}
	}
	held := false
	n.repo.Store.BucketFiles(n.ctx, store.Bucket(s.Bucket), func(cid.Cid, time.Time) error {
		held = true
		return errStop
	})
	return held
}

// keepIfKeeper keeps r when this node keeps its scope's names.
func (n *Node) keepIfKeeper(r bucket.NameRecord) {
	if !n.keeper(r.Scope()) {
		return
	}
	if err := n.keepName(r); err != nil {
		n.log.Warn("keep name record", "name", r.Name, "scope", r.Scope(), "err", err)
	}
}

// keepName stores r as a piece (in its bucket), roots it and the CID it
// maps to for its name, and keeps it as the name's newest version when
// it is.
func (n *Node) keepName(r bucket.NameRecord) error {
	enc, err := r.Marshal()
	if err != nil {
		return err
	}
	c := bucket.NameRecordCID(enc)
	id := bucket.NameIDOf(r.Scope(), r.Name)
	release := n.repo.Store.Hold(c) // from the put to the root: no GC between
	defer release()
	tx := n.repo.Store.Begin()
	if r.InBucket() {
		tx.InBucket(store.Bucket(r.Bucket))
	}
	if err := tx.PutPiece(c, enc); err != nil {
		tx.Discard()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := n.repo.Store.RootNamed(id, c, r.Value); err != nil {
		return err
	}
	n.ann.add([]cid.Cid{c}) // a log elsewhere fetches it by its CID
	hs, err := repo.Names(n.repo.Path)
	if err != nil {
		return err
	}
	_, err = hs.Keep(r)
	n.names.offer(id, r)
	return err
}

// republishNames puts the names the node keeps in the DHT once the node
// has joined (DHT nodes keep values in memory: a restart loses them),
// then every republish interval, each first updated to the newest
// version a lookup finds; while the node has no DHT peers it tries again
// on the bucket records' back-off. Until the node closes.
func (n *Node) republishNames() {
	select {
	case <-n.ctx.Done():
		return
	case <-n.joined:
	}
	retry := firstRecordRetry
	for {
		wait := n.names.republish
		if alone := n.republishKept(); alone {
			wait, retry = min(retry, wait), min(2*retry, maxRecordRetry)
		} else {
			retry = firstRecordRetry
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// republishKept puts every name the node keeps in the DHT; alone says
// some found no DHT peer.
func (n *Node) republishKept() (alone bool) {
	hs, err := repo.Names(n.repo.Path)
	if err != nil {
		return false
	}
	// Names seen before this node held their bucket (a replica pushed
	// later): kept from now on.
	n.names.mu.Lock()
	var seen []bucket.NameRecord
	for _, e := range n.names.m {
		if e.rec.InBucket() {
			seen = append(seen, e.rec)
		}
	}
	n.names.mu.Unlock()
	for _, r := range seen {
		if _, err := hs.Get(bucket.NameIDOf(r.Scope(), r.Name)); errors.Is(err, repo.ErrNoName) {
			n.keepIfKeeper(r)
		}
	}
	rs, err := hs.List()
	if err != nil {
		n.log.Warn("names to republish", "err", err)
		return false
	}
	buckets := map[bucket.ID]bool{} // whose records went out with their names
	for _, r := range rs {
		if n.ctx.Err() != nil {
			return false
		}
		if !n.keeper(r.Scope()) {
			continue
		}
		if r.InBucket() && !buckets[r.Bucket] {
			// A name is of no use without its bucket's record (owner,
			// access): it goes out with them, on the names' schedule.
			buckets[r.Bucket] = true
			if br, ok := n.records.get(r.Bucket); ok {
				ctx, cancel := context.WithTimeout(n.ctx, namePutTimeout)
				if err := n.dht.PutBucketRecord(ctx, br); err != nil {
					n.log.Debug("republish bucket record with its names", "bucket", r.Bucket, "err", err)
				}
				cancel()
			}
		}
		id := bucket.NameIDOf(r.Scope(), r.Name)
		ctx, cancel := context.WithTimeout(n.ctx, nameLookupTimeout)
		if found, err := n.dht.GetName(ctx, id, false); err == nil && bucket.NewerName(found, r) {
			if err := n.keepName(found); err == nil {
				r = found
			}
		}
		err := n.dht.PutName(ctx, r)
		cancel()
		if err != nil {
			alone = alone || errors.Is(err, dht.ErrNoPeers)
			n.log.Debug("republish name", "name", r.Name, "scope", r.Scope(), "err", err)
			continue
		}
		n.names.republished.Add(1)
	}
	return alone
}

// NamesRepublished is how many name records the node has put in the DHT
// again since it started.
func (n *Node) NamesRepublished() uint64 { return n.names.republished.Load() }

// newNames makes the node's name cache from the repo's config.
func (n *Node) newNames() *names {
	nc := n.repo.Config.Network
	ns := &names{ttl: time.Duration(nc.NameTTL), republish: time.Duration(nc.NameRepublish)}
	if ns.ttl == 0 {
		ns.ttl = DefaultNameTTL
	}
	if ns.republish == 0 {
		ns.republish = DefaultNameRepublish
	}
	return ns
}
