package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
)

// Deleting a file from a bucket: a tombstone (bucket.Tombstone), signed
// with the owner's key or a grant of delete, goes to every node that
// keeps the file; each checks it, drops its copy to cache (GC reclaims
// it) and keeps the tombstone, with which it answers checks, so a keeper
// that was away drops its copy when it comes back instead of pushing it
// to others again.

// maxTombstoneFrame bounds a tombstone's frame: a CID, a bucket, a
// signature and a grant chain.
const maxTombstoneFrame = 16 << 10

// tombstoneProtocol is the protocol on which a node hands another a
// tombstone.
func tombstoneProtocol(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/tombstone/1.0.0")
}

// startTombstones takes the tombstones of other nodes.
func (n *Node) startTombstones() {
	n.host.SetStreamHandler(tombstoneProtocol(n.Cluster()), func(str network.Stream) {
		defer str.Close()
		str.SetDeadline(time.Now().Add(checkWait))
		b, err := frame.Read(bufio.NewReader(str), maxTombstoneFrame)
		if err != nil {
			str.Reset()
			return
		}
		var a checkAnswer // its Error only
		if ts, err := bucket.DecodeTombstone(b); err != nil {
			a.Error = err.Error()
		} else if err := n.applyTombstone(n.ctx, ts); err != nil {
			a.Error = err.Error()
		}
		out, _ := json.Marshal(a)
		if frame.Write(str, out) != nil {
			str.Reset()
		}
	})
}

// Delete removes root from in's bucket, here and at the nodes that keep
// it, which it returns. It signs the tombstone with the owner's key when
// this repo holds it, or with the key in's grant of delete is for.
func (n *Node) Delete(ctx context.Context, in *In, root cid.Cid) ([]peer.ID, error) {
	if !in.inBucket() {
		return nil, fmt.Errorf("delete %s: no bucket (a file is deleted from a bucket)", root)
	}
	rec, err := n.record(ctx, in)
	if err != nil {
		return nil, err
	}
	ts, err := n.tombstone(rec, root, in.Token)
	if err != nil {
		return nil, fmt.Errorf("delete %s from bucket %s: %w", root, rec.Bucket, err)
	}
	// Who keeps it, asked before this node's copy goes.
	keepers, _, _, kerr := n.keepers(ctx, rec, root, 0, false, nil)
	if err := n.applyTombstone(ctx, ts); err != nil {
		return nil, err
	}
	if kerr != nil {
		return nil, fmt.Errorf("deleted %s here, but found no nodes to tell: %w", root, kerr)
	}
	var told []peer.ID
	var errs []error
	for _, p := range keepers {
		if p == n.host.ID() {
			continue
		}
		if err := n.sendTombstone(ctx, p, ts); err != nil {
			errs = append(errs, err)
			continue
		}
		told = append(told, p)
	}
	return told, errors.Join(errs...)
}

// tombstone signs the deletion of root from rec's bucket: with the
// owner's key when the keystore holds it, else with the key token, a
// grant of delete, is for.
func (n *Node) tombstone(rec bucket.Record, root cid.Cid, token string) (bucket.Tombstone, error) {
	now := time.Now()
	ks, err := repo.Keys(n.repo.Path)
	if err != nil {
		return bucket.Tombstone{}, err
	}
	var ts bucket.Tombstone
	if owner, ok, err := ks.Owned(rec.Owner); err != nil {
		return ts, err
	} else if ok {
		ts = bucket.NewTombstone(owner, rec.Bucket, root, "", now)
	} else {
		if token == "" {
			return ts, fmt.Errorf("%w: no grant to delete (this repo holds no key of the owner %s; pass a token)", repo.ErrDenied, rec.Owner)
		}
		t, err := bucket.ParseToken(token)
		if err != nil {
			return ts, err
		}
		key, _, err := n.repo.GrantKey(t)
		if err != nil {
			return ts, err
		}
		ts = bucket.NewTombstone(key, rec.Bucket, root, token, now)
	}
	return ts, ts.Verify(rec.Owner, now)
}

// applyTombstone checks ts against its bucket's record, keeps it, and
// drops this node's copy of the file to cache.
func (n *Node) applyTombstone(ctx context.Context, ts bucket.Tombstone) error {
	rec, err := n.records.current(ctx, ts.Bucket)
	if err != nil {
		return fmt.Errorf("tombstone of %s: the record of bucket %s: %w", ts.Root, ts.Bucket, err)
	}
	if err := ts.Verify(rec.Owner, time.Now()); err != nil {
		return err
	}
	if err := n.repo.KeepTombstone(ts); err != nil {
		return err
	}
	b := store.Bucket(ts.Bucket)
	if ok, err := n.repo.Store.InBucketFile(b, ts.Root); err != nil || !ok {
		return err
	}
	if err := n.repo.Store.Unroot(b, ts.Root); err != nil {
		return err
	}
	n.repairs.forget(ts.Root.KeyString() + string(ts.Bucket[:]))
	n.log.Info("file deleted from its bucket; this copy is cache now", "cid", ts.Root, "bucket", ts.Bucket, "by", ts.Signer)
	return nil
}

// sendTombstone hands ts to p and waits for it to take it.
func (n *Node) sendTombstone(ctx context.Context, p peer.ID, ts bucket.Tombstone) error {
	_, err := n.exchangeFrame(ctx, p, tombstoneProtocol(n.Cluster()), "tombstone to", ts.Encode())
	return err
}
