package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Pushes: a node asks another to keep a file of a bucket, and the other
// pulls it with its own fetcher, so every piece is verified as any read's
// is, and roots it for the bucket. One stream a push: the request, then
// the receiver's answers: accepted (or why not), then held or failed.

// Push limits, each with why.
const (
	// maxPulls bounds the pushes a node pulls at once: each is a
	// download with its read-ahead; more are refused busy, and the pusher
	// tries again or the next node.
	maxPulls = 4
	// maxPushFrame bounds a push's request and answers: a CID, a bucket,
	// a grant and a message.
	maxPushFrame = 16 << 10
	// pushAnswerWait bounds the wait for the receiver's first answer.
	pushAnswerWait = 30 * time.Second
	// pullFloor is the slowest pull a push waits for: 1 MiB/s, past a
	// minute of start.
	pullFloor = 1 << 20
)

// pushProtocol is the protocol of pushes in cluster.
func pushProtocol(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/push/1.0.0")
}

// pushRequest asks the receiver to keep the file Root of Bucket, of Size
// bytes of content, pulling it from the pusher (and any holder it finds).
type pushRequest struct {
	Bucket string `json:"bucket"`
	Root   string `json:"root"`
	Size   uint64 `json:"size"`
	Token  string `json:"token,omitempty"` // a put grant naming the receiver
}

// PushStatus is a receiver's answer to a push.
type PushStatus string

// The answers.
const (
	PushAccepted PushStatus = "accepted" // pulling now; held or failed follows
	PushHeld     PushStatus = "held"     // every piece is here and rooted
	PushRefused  PushStatus = "refused"  // no reason to keep the bucket's files
	PushBusy     PushStatus = "busy"     // pulling as many as it may: ask again later
	PushFull     PushStatus = "full"     // no room under its quota
	PushFailed   PushStatus = "failed"   // the pull did not complete
)

type pushAnswer struct {
	Status PushStatus `json:"status"`
	Error  string     `json:"error,omitempty"`
}

// PushError is a push a node did not take, with its answer.
type PushError struct {
	Peer   peer.ID
	Status PushStatus
	Msg    string
}

func (e *PushError) Error() string {
	return fmt.Sprintf("push to %s: %s: %s", e.Peer, e.Status, e.Msg)
}

// pullWait is how long a push of size bytes may take to be held.
func pullWait(size uint64) time.Duration {
	return time.Minute + time.Duration(size/pullFloor)*time.Second
}

// startPushes takes the pushes of other nodes.
func (n *Node) startPushes() {
	n.pulls = make(chan struct{}, maxPulls)
	n.host.SetStreamHandler(pushProtocol(n.Cluster()), n.servePush)
}

// servePush answers one push: refused, busy or full at once, else
// accepted, then held once the file is pulled and rooted, or failed.
func (n *Node) servePush(str network.Stream) {
	defer str.Close()
	from := str.Conn().RemotePeer()
	str.SetDeadline(time.Now().Add(pushAnswerWait))
	answer := func(st PushStatus, err error) {
		a := pushAnswer{Status: st}
		if err != nil {
			a.Error = err.Error()
		}
		b, _ := json.Marshal(a)
		if werr := frame.Write(str, b); werr != nil {
			str.Reset()
		}
		if err != nil {
			n.log.Info("push not taken", "peer", from, "status", st, "err", err)
		}
	}
	b, err := frame.Read(bufio.NewReader(str), maxPushFrame)
	if err != nil {
		str.Reset()
		return
	}
	var req pushRequest
	if err := json.Unmarshal(b, &req); err != nil {
		answer(PushRefused, fmt.Errorf("malformed push request: %w", err))
		return
	}
	root, err := cid.Decode(req.Root)
	if err == nil {
		err = pieces.CheckPieceCID(root)
	}
	if err != nil {
		answer(PushRefused, fmt.Errorf("push of root %.80q: %w", req.Root, err))
		return
	}
	id, err := bucket.ParseID(req.Bucket)
	if err != nil {
		answer(PushRefused, fmt.Errorf("push of %s: bucket %.80q: %w", root, req.Bucket, err))
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, pullWait(req.Size))
	defer cancel()
	if _, deleted, _ := n.repo.Tombstone(id, root); deleted {
		answer(PushRefused, fmt.Errorf("push of %s: deleted from bucket %s", root, id))
		return
	}
	granted, err := n.acceptPush(ctx, id, req.Token)
	if err != nil {
		answer(PushRefused, fmt.Errorf("push of %s in bucket %s: %w", root, id, err))
		return
	}
	if granted {
		if err := n.repo.KeepGrant(id, req.Token); err != nil {
			n.log.Warn("push: its grant not kept; this node cannot pass it on", "bucket", id, "err", err)
		}
	}
	select {
	case n.pulls <- struct{}{}:
		defer func() { <-n.pulls }()
	default:
		answer(PushBusy, fmt.Errorf("pulling %d pushes already", maxPulls))
		return
	}
	if err := n.repo.Store.Fits(ctx, req.Size); err != nil {
		answer(PushFull, fmt.Errorf("push of %s (%d bytes): %w", root, req.Size, err))
		return
	}
	answer(PushAccepted, nil)
	str.SetDeadline(time.Now().Add(pullWait(req.Size)))
	n.holders.put(root, []peer.ID{from}) // ask the pusher first
	if err := n.pinIn(ctx, root, &In{Bucket: id, Token: req.Token}); err != nil {
		answer(PushFailed, err)
		return
	}
	n.log.Debug("pushed file held", "cid", root, "bucket", id, "peer", from)
	answer(PushHeld, nil)
}

// acceptPush says whether this node keeps files of bucket b when pushed
// with token, or that it has no reason to (see repo.ReplicationConfig);
// granted says token is a put grant this node may act on, which it keeps
// to pass on.
func (n *Node) acceptPush(ctx context.Context, b bucket.ID, token string) (granted bool, err error) {
	rec, err := n.records.current(ctx, b)
	if err != nil {
		return false, fmt.Errorf("its record: %w", err)
	}
	if err := n.keepRecord(rec); err != nil {
		return false, err
	}
	if rec.Cluster != n.Cluster() {
		return false, fmt.Errorf("%w: bucket %s lives in cluster %q", ErrOtherCluster, b, rec.Cluster)
	}
	var grantErr error
	if token != "" {
		grantErr = n.repo.Authorize(rec, bucket.OpPut, token)
		granted = grantErr == nil
	}
	cfg := n.repo.Config.Replication
	switch {
	case granted, slices.Contains(cfg.StoreFor, "*"), slices.Contains(cfg.StoreFor, b.String()), slices.Contains(cfg.StoreFor, rec.Owner.String()):
		return granted, nil
	case n.privateCluster && !cfg.RefuseClusterPushes:
		return false, nil
	case grantErr != nil:
		return false, grantErr
	}
	return false, errors.New("no push grant: this node keeps no files of the bucket for others (a put grant naming its key, or replication.store_for, would let it)")
}

// keepRecord keeps rec in the repo, for a node that keeps files of its
// bucket: it republishes the record and announces itself a holder of the
// bucket, as for its own.
func (n *Node) keepRecord(rec bucket.Record) error {
	bs, err := repo.Buckets(n.repo.Path)
	if err == nil {
		_, err = bs.Keep(rec)
	}
	if err != nil {
		return fmt.Errorf("keep the record of bucket %s: %w", rec.Bucket, err)
	}
	return nil
}

// pinIn is Pin in a bucket (none when in is nil): the file is rooted for
// the bucket, which keeps it as the bucket's own. What the store lacks of
// it is fetched, in the bucket.
func (n *Node) pinIn(ctx context.Context, c cid.Cid, in *In) error {
	if !in.inBucket() {
		return n.Pin(ctx, c)
	}
	if err := n.repo.Store.Complete(ctx, c); err == nil {
		release := n.repo.Store.Hold(c)
		defer release()
		tx := n.repo.Store.Begin()
		tx.InBucket(store.Bucket(in.Bucket))
		tx.Pin(c)
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("pin %s in bucket %s: %w", c, in.Bucket, err)
		}
		n.ann.add([]cid.Cid{c, bucket.HoldersKey(in.Bucket)})
		return nil
	}
	rd := n.NewReaderIn(c, in)
	if err := rd.Open(ctx); err != nil {
		return errors.Join(fmt.Errorf("pin %s: %w", c, err), rd.Close())
	}
	_, err := rd.WriteTo(io.Discard)
	if err == nil {
		rd.Pin()
	}
	if err := errors.Join(err, rd.Close()); err != nil {
		return fmt.Errorf("pin %s in bucket %s: %w", c, in.Bucket, err)
	}
	return nil
}

// push asks p to keep req's file and waits until p holds it, or says why
// it will not. accepted is called
// once p has taken the push.
func (n *Node) push(ctx context.Context, p peer.ID, req pushRequest, accepted func()) error {
	str, err := n.openStream(ctx, p, pushProtocol(n.Cluster()))
	if err != nil {
		return &PushError{Peer: p, Status: PushFailed, Msg: err.Error()}
	}
	defer str.Close()
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	str.SetDeadline(time.Now().Add(pushAnswerWait))
	enc, _ := json.Marshal(req)
	if err := frame.Write(str, enc); err != nil {
		str.Reset()
		return &PushError{Peer: p, Status: PushFailed, Msg: err.Error()}
	}
	br := bufio.NewReader(str)
	for {
		raw, err := frame.Read(br, maxPushFrame)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &PushError{Peer: p, Status: PushFailed, Msg: fmt.Sprintf("no answer: %v", err)}
		}
		var a pushAnswer
		if err := json.Unmarshal(raw, &a); err != nil {
			return &PushError{Peer: p, Status: PushFailed, Msg: fmt.Sprintf("malformed answer: %v", err)}
		}
		switch a.Status {
		case PushHeld:
			return nil
		case PushAccepted:
			str.SetDeadline(time.Now().Add(pullWait(req.Size)))
			if accepted != nil {
				accepted()
			}
		default:
			return &PushError{Peer: p, Status: a.Status, Msg: a.Error}
		}
	}
}

// streamOpenWait bounds the opening of a push's or a check's stream: a
// live node answers in milliseconds, and a stream on a QUIC connection to
// a killed one would wait for the connection's idle timeout.
const streamOpenWait = 5 * time.Second

// openStream opens a stream to p for proto within streamOpenWait.
func (n *Node) openStream(ctx context.Context, p peer.ID, proto protocol.ID) (network.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, streamOpenWait)
	defer cancel()
	return n.host.NewStream(ctx, p, proto)
}
