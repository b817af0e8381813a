package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// Publish is a request to publish a new version of a name.
type Publish struct {
	NameQuery
	Value cid.Cid
	// Seq, when not 0, is the version's sequence number, which must be
	// above every version the node knows; 0: the next one.
	Seq uint64
	// Prune starts the history anew: the version links no earlier one,
	// and this node lets the earlier ones go (GC may take them).
	Prune bool
}

// Published is what a publish did.
type Published struct {
	Record bucket.NameRecord
	// Unrooted is how many CIDs of earlier versions a prune let go here.
	Unrooted int
	// Warning says what did not reach the cluster (no DHT peers yet:
	// the node republishes the name once it has some).
	Warning string
}

// PublishName signs a new version of a name with the key that may:
// the bucket owner's when the repo holds it, else the subject of the
// request's grant of put (whose chain the record carries); for an
// account's name, the keystore's key. The record is kept here (a piece
// in the store, rooted with the CID it names, and the name's newest
// version), put in the DHT, and pushed to the bucket's holders and the
// connected peers.
func (n *Node) PublishName(ctx context.Context, p Publish) (Published, error) {
	s, name, err := n.scope(p.NameQuery)
	if err != nil {
		return Published{}, err
	}
	if err := pieces.CheckCID(p.Value); err != nil {
		return Published{}, err
	}
	now := time.Now()
	var r bucket.NameRecord
	var key bucket.PrivateKey
	token := ""
	if s.Bucket != (bucket.ID{}) {
		rec, err := n.record(ctx, p.In)
		if err != nil {
			return Published{}, err
		}
		if key, token, err = n.putSigner(rec, p.In.Token); err != nil {
			return Published{}, err
		}
		r = bucket.NewBucketName(rec, name, p.Value, 0, cid.Undef, now)
	} else {
		if p.Account != nil {
			ks, err := repo.Keys(n.repo.Path)
			if err != nil {
				return Published{}, err
			}
			k, ok, err := ks.Owned(*p.Account)
			if err != nil {
				return Published{}, err
			}
			if !ok {
				return Published{}, fmt.Errorf("%w: name %q of %s: this repo holds no key of that account", repo.ErrDenied, name, s)
			}
			key = k
		} else if key, err = n.nameKey(p.Key); err != nil {
			return Published{}, err
		}
		r = bucket.NewAccountName(name, p.Value, 0, cid.Undef, now)
	}
	id := bucket.NameIDOf(s, name)
	head, known := n.headOf(ctx, id)
	switch {
	case p.Seq != 0 && known && p.Seq <= head.Seq:
		return Published{}, fmt.Errorf("%w: name %q of %s: sequence number %d, and the name is at %d already", ErrStaleName, name, s, p.Seq, head.Seq)
	case p.Seq != 0:
		r.Seq = p.Seq
	case known:
		r.Seq = head.Seq + 1
	default:
		r.Seq = 1
	}
	if known && !p.Prune {
		r.Prev = head.CID()
	}
	if err := r.Sign(key, token, now); err != nil {
		return Published{}, err
	}
	if err := n.keepName(r); err != nil {
		return Published{}, err
	}
	out := Published{Record: r}
	if p.Prune {
		if out.Unrooted, err = n.repo.Store.UnrootNamed(ctx, id, r.CID(), r.Value); err != nil {
			return out, err
		}
	}
	var wg sync.WaitGroup
	var putErr error
	wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, namePutTimeout)
		defer cancel()
		putErr = n.dht.PutName(pctx, r)
	})
	wg.Go(func() { n.pushName(ctx, r, false) })
	wg.Wait()
	if r.InBucket() { // holders not connected now: found in the DHT, which takes longer than a publish may
		n.wg.Go(func() { n.pushName(n.ctx, r, true) })
	}
	if putErr != nil {
		if !errors.Is(putErr, dht.ErrNoPeers) {
			n.log.Info("publish name in the DHT", "name", name, "scope", s, "err", putErr)
		}
		out.Warning = fmt.Sprintf("not yet in the DHT (%v): the node puts it there again every %s", putErr, n.names.republish)
	}
	return out, nil
}

// putSigner is the key that signs a bucket's name, and the grant it
// carries: the owner's key when the repo holds it, else the key token
// grants put to.
func (n *Node) putSigner(rec bucket.Record, token string) (bucket.PrivateKey, string, error) {
	ks, err := repo.Keys(n.repo.Path)
	if err != nil {
		return bucket.PrivateKey{}, "", err
	}
	if k, ok, err := ks.Owned(rec.Owner); err != nil || ok {
		return k, "", err
	}
	if token == "" {
		return bucket.PrivateKey{}, "", fmt.Errorf("%w: bucket %s: no grant of put to publish its names (this repo holds no key of its owner %s; pass a token)", repo.ErrDenied, rec.Bucket, rec.Owner)
	}
	t, err := bucket.ParseToken(token)
	if err != nil {
		return bucket.PrivateKey{}, "", err
	}
	k, _, err := n.repo.GrantKey(t)
	if err != nil {
		return k, "", err
	}
	pub := k.Public()
	if err := t.Verify(bucket.Request{Bucket: rec.Bucket, Owner: rec.Owner, Op: bucket.OpPut, Requester: &pub, Now: time.Now()}); err != nil {
		return k, "", err
	}
	return k, token, nil
}

// headOf is the newest version of id the node knows or finds quickly:
// kept, cached or the DHT's first answer within namePublishLookup.
func (n *Node) headOf(ctx context.Context, id bucket.NameID) (bucket.NameRecord, bool) {
	var best bucket.NameRecord
	if r, err := n.keptName(id); err == nil {
		best = r
	}
	if r, have, _ := n.names.newest(id); have && (best.Seq == 0 || bucket.NewerName(r, best)) {
		best = r
	}
	lctx, cancel := context.WithTimeout(ctx, namePublishLookup)
	defer cancel()
	if r, err := n.dht.GetName(lctx, id, true); err == nil && (best.Seq == 0 || bucket.NewerName(r, best)) {
		best = r
	}
	return best, best.Seq > 0
}

// NameLog lists the versions of a name, newest first: the newest the
// node resolves, then each version's previous, read from the store or
// fetched from the cluster, until one links none. A version that cannot
// be had ends the list, with the error that says why.
func (n *Node) NameLog(ctx context.Context, q NameQuery) ([]bucket.NameRecord, error) {
	head, err := n.ResolveName(ctx, q, false)
	if err != nil {
		return nil, err
	}
	r := head.Record
	id := bucket.NameIDOf(r.Scope(), r.Name)
	keeper := n.keeper(r.Scope())
	in := q.In
	if in != nil && !in.inBucket() {
		in = nil
	}
	out := []bucket.NameRecord{r}
	for r.Prev.Defined() && len(out) < maxNameLog {
		c := r.Prev
		enc, err := n.repo.Store.GetPiece(ctx, c)
		if err != nil {
			if enc, err = n.Block(ctx, c, in); err != nil {
				return out, fmt.Errorf("version before %d of name %q: %s: %w", r.Seq, r.Name, c, err)
			}
		}
		prev, err := bucket.ParseNameRecord(enc, time.Now())
		switch {
		case err != nil:
			return out, fmt.Errorf("version before %d of name %q: %s: %w", r.Seq, r.Name, c, err)
		case bucket.NameIDOf(prev.Scope(), prev.Name) != id || prev.Seq >= r.Seq:
			return out, fmt.Errorf("%w %q: %s, linked as the version before %d, is %q version %d", bucket.ErrBadNameRecord, r.Name, c, r.Seq, prev.Name, prev.Seq)
		}
		if keeper {
			if err := n.repo.Store.RootNamed(id, c, prev.Value); err != nil {
				n.log.Warn("root a name's version", "name", r.Name, "cid", c, "err", err)
			}
		}
		out = append(out, prev)
		r = prev
	}
	return out, nil
}

// Pushing names, each limit with why.
const (
	// maxPushedName bounds a pushed name record's frame: a record is at
	// most 8 KiB.
	maxPushedName = 9 << 10
)

// nameProtocol is the protocol on which a node hands another a new
// version of a name: one frame holding its record. Anyone may send one:
// it is verified, and kept only when newer.
func nameProtocol(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/name/1.0.0")
}

// startNamePush takes the name records other nodes push: the cache takes
// a newer version at once, and a keeper of the name's scope keeps it.
func (n *Node) startNamePush() {
	n.host.SetStreamHandler(nameProtocol(n.Cluster()), func(str network.Stream) {
		defer str.Close()
		str.SetDeadline(time.Now().Add(pushTimeout))
		b, err := frame.Read(bufio.NewReader(str), maxPushedName)
		if err != nil {
			str.Reset()
			return
		}
		r, err := bucket.ParseNameRecord(b, time.Now())
		if err != nil {
			n.log.Info("pushed name record refused", "peer", str.Conn().RemotePeer(), "err", err)
			return
		}
		if n.names.offer(bucket.NameIDOf(r.Scope(), r.Name), r) {
			n.keepIfKeeper(r)
		}
	})
}

// pushName sends r to the connected peers or, with holders, to the
// holders of r's bucket the DHT names that are not connected, at most
// maxPushes of them, within pushTimeout.
func (n *Node) pushName(ctx context.Context, r bucket.NameRecord, holders bool) {
	enc, err := r.Marshal()
	if err != nil {
		return
	}
	if holders {
		n.pushTo(ctx, nameProtocol(n.Cluster()), enc, false, &r.Bucket)
	} else {
		n.pushTo(ctx, nameProtocol(n.Cluster()), enc, true, nil)
	}
}
