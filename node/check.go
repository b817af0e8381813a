package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Checks: does a node keep these files of a bucket? One stream asks about
// up to maxCheckRoots roots, so a node keeping thousands of files asks
// each other node a few times a check interval, not once a file: a
// stream's setup (its negotiation, the resource manager's scopes, the
// encryption of a small frame) cost more than the lookups it carries.

// Check limits, each with why.
const (
	// maxCheckRoots bounds the roots of one check: a frame of 128 KiB
	// of CIDs at most, one read of the index each.
	maxCheckRoots = 2048
	// maxCheckFrame bounds a check's request: maxCheckRoots CIDs of up
	// to 60 characters, quoted, and a bucket.
	maxCheckFrame = 160 << 10
	// checkWait bounds one check of one node: a dial to a node that is
	// gone fails at once on a LAN over TCP, but a QUIC connection to a
	// killed node stays open until its idle timeout, and a stream on it
	// waits until this. An answer itself takes milliseconds.
	checkWait = 5 * time.Second
)

// checkProtocol is the protocol of checks in cluster.
func checkProtocol(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/check/1.0.0")
}

// checkRequest asks whether the receiver keeps, rooted for Bucket, each
// of Roots. Token, a grant of get in the bucket to the asker's key, is
// what a private bucket's answers need: they say what is in it.
type checkRequest struct {
	Bucket string   `json:"bucket"`
	Roots  []string `json:"roots"`
	Token  string   `json:"token,omitempty"`
}

// checkAnswer says, root by root, whether the receiver keeps it, with the
// tombstones it keeps of those deleted from the bucket (delete.go);
// Error, when set, is why it answered none.
type checkAnswer struct {
	Held    []bool            `json:"held"`
	Deleted []json.RawMessage `json:"deleted,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// startChecks answers other nodes' checks.
func (n *Node) startChecks() {
	n.host.SetStreamHandler(checkProtocol(n.Cluster()), n.serveCheck)
}

func (n *Node) serveCheck(str network.Stream) {
	defer str.Close()
	str.SetDeadline(time.Now().Add(checkWait))
	b, err := frame.Read(bufio.NewReader(str), maxCheckFrame)
	if err != nil {
		str.Reset()
		return
	}
	a := n.answerCheck(str.Conn().RemotePeer(), b)
	if b, err = json.Marshal(a); err == nil {
		err = frame.Write(str, b)
	}
	if err != nil {
		str.Reset()
	}
}

// answerCheck answers the check request b from peer p. A bucket whose
// record this node does not keep, it keeps no file of: all no, and no
// lookup of any ID a peer sends. Otherwise the answers go only to a peer
// that may read the bucket (mayReadBucket), as its files' would.
func (n *Node) answerCheck(p peer.ID, b []byte) checkAnswer {
	var req checkRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return checkAnswer{Error: fmt.Sprintf("malformed check: %v", err)}
	}
	if len(req.Roots) > maxCheckRoots {
		return checkAnswer{Error: fmt.Sprintf("check of %d roots: at most %d", len(req.Roots), maxCheckRoots)}
	}
	id, err := bucket.ParseID(req.Bucket)
	if err != nil {
		return checkAnswer{Error: fmt.Sprintf("check: bucket %.80q: %v", req.Bucket, err)}
	}
	a := checkAnswer{Held: make([]bool, len(req.Roots))}
	_, known := n.records.get(id)
	if known {
		ctx, cancel := context.WithTimeout(n.ctx, recordWait)
		defer cancel()
		if err := n.mayReadBucket(ctx, reader{peer: p}, id, creds{bucket: &id, token: req.Token}); err != nil {
			n.log.Debug("check refused", "peer", p, "bucket", id, "err", err)
			return checkAnswer{Error: fmt.Sprintf("check: %v", Stranger(err))}
		}
	}
	for i, r := range req.Roots {
		root, err := cid.Decode(r)
		if err == nil {
			err = pieces.CheckPieceCID(root)
		}
		if err != nil {
			return checkAnswer{Error: fmt.Sprintf("check: root %.80q: %v", r, err)}
		}
		if !known {
			continue
		}
		a.Held[i], err = n.repo.Store.InBucketFile(store.Bucket(id), root)
		if err != nil {
			return checkAnswer{Error: fmt.Sprintf("check: %v", err)}
		}
		if ts, ok, err := n.repo.Tombstone(id, root); err == nil && ok {
			a.Deleted = append(a.Deleted, ts.Encode())
		}
	}
	return a
}

// checkGrant is the grant this node shows in its checks of bucket b: one
// it gives itself with the owner's key, or the one it keeps the bucket's
// files by; "" when it has neither (a public bucket needs none).
func (n *Node) checkGrant(b bucket.ID) string {
	rec, ok := n.records.get(b)
	if !ok {
		return ""
	}
	if tok, err := n.repo.Grant(rec, bucket.OpGet, ""); err == nil && tok != "" {
		return tok
	}
	if t, ok, err := n.repo.KeptGrant(b); err == nil && ok {
		return t.String()
	}
	return ""
}

// check asks p which of roots of bucket b it keeps, showing token (see
// checkGrant); the tombstones p answers with are checked and applied
// here.
func (n *Node) check(ctx context.Context, p peer.ID, b bucket.ID, token string, roots []cid.Cid) ([]bool, error) {
	req := checkRequest{Bucket: b.String(), Roots: make([]string, len(roots)), Token: token}
	for i, r := range roots {
		req.Roots[i] = r.String()
	}
	enc, _ := json.Marshal(req)
	a, err := n.exchangeFrame(ctx, p, checkProtocol(n.Cluster()), "check", enc)
	if err != nil {
		return nil, err
	}
	if len(a.Held) != len(roots) {
		return nil, fmt.Errorf("check %s: %d answers to %d roots", p, len(a.Held), len(roots))
	}
	for _, raw := range a.Deleted {
		ts, err := bucket.DecodeTombstone(raw)
		if err == nil && ts.Bucket == b {
			err = n.applyTombstone(ctx, ts)
		}
		if err != nil {
			n.log.Warn("check: a tombstone not taken", "peer", p, "err", err)
		}
	}
	return a.Held, nil
}

// exchangeFrame sends p one frame on a new stream of proto and reads its
// answer, within checkWait: a check's, or a tombstone's (its Error only).
// what names the exchange in errors.
func (n *Node) exchangeFrame(ctx context.Context, p peer.ID, proto protocol.ID, what string, req []byte) (checkAnswer, error) {
	var a checkAnswer
	ctx, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	str, err := n.openStream(ctx, p, proto)
	if err != nil {
		return a, fmt.Errorf("%s %s: %w", what, p, err)
	}
	defer str.Close()
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	if err := frame.Write(str, req); err != nil {
		str.Reset()
		return a, fmt.Errorf("%s %s: %w", what, p, err)
	}
	raw, err := frame.Read(bufio.NewReader(str), maxCheckFrame)
	if err != nil {
		return a, fmt.Errorf("%s %s: no answer: %w", what, p, err)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("%s %s: malformed answer: %w", what, p, err)
	}
	if a.Error != "" {
		return a, fmt.Errorf("%s %s: %s", what, p, a.Error)
	}
	return a, nil
}
