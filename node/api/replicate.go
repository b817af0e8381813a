package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
)

// ReplicaLine is one line of a replication's answer: a step (Peer and
// Status), or, last, the outcome (Done, with the holders or the error).
type ReplicaLine struct {
	Peer     string   `json:"peer,omitempty"`
	Status   string   `json:"status,omitempty"`
	Error    string   `json:"error,omitempty"`
	Done     bool     `json:"done,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
	Holders  []string `json:"holders,omitempty"`
}

// replicate answers POST /replicate/{cid}?bucket=ID: the file is pushed
// until the bucket's factor of nodes keep it, one JSON line a step as it
// happens, then the outcome. The status is 200 once the work begins; the
// last line says whether it reached the factor.
func (s *Server) replicate(w http.ResponseWriter, r *http.Request) {
	c, in, ok := s.cidIn(w, r)
	if !ok {
		return
	}
	if in == nil {
		s.fail(w, fmt.Errorf("%w: replicate: no bucket (?bucket=ID): a replication factor is a bucket's", ErrUsage))
		return
	}
	send := lineSender[ReplicaLine](w)
	pl, err := s.n.Replicate(r.Context(), in, c, func(e node.ReplicaEvent) {
		send(ReplicaLine{Peer: e.Peer.String(), Status: string(e.Status), Error: e.Err})
	})
	last := ReplicaLine{Done: true, Replicas: pl.Replicas, Holders: peerStrings(pl.Holders)}
	if err != nil {
		last.Error = err.Error()
	}
	send(last)
}

// Replicate asks the node to have k kept by its bucket's factor of nodes
// (the client's bucket), calling step for each step; it returns the
// outcome, whose Error says when the factor was not reached.
func (c *Client) Replicate(ctx context.Context, k cid.Cid, step func(ReplicaLine)) (ReplicaLine, error) {
	resp, err := c.do(ctx, http.MethodPost, "/replicate/"+k.String(), nil, nil, -1)
	if err != nil {
		return ReplicaLine{}, err
	}
	defer resp.Body.Close()
	return readOutcome(resp.Body, "replicate "+k.String(), func(l ReplicaLine) bool { return l.Done }, step)
}
