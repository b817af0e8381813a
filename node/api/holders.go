package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/node"
)

// HolderLine is one line of GET /holders/{cid}: a piece and its providers
// in the DHT, or, last, the outcome (Done): the bucket's factor and the
// nodes that say they keep the file, nearest its root first.
type HolderLine struct {
	Index    int      `json:"index,omitempty"` // the piece's place in the tree's walk, the root's 0
	CID      string   `json:"cid,omitempty"`
	Size     uint64   `json:"size,omitempty"`
	Data     bool     `json:"data,omitempty"`
	Holders  []string `json:"holders,omitempty"`
	Done     bool     `json:"done,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
	Keepers  []string `json:"keepers,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// holders answers GET /holders/{cid}[?bucket=ID]: a line a piece as its
// lookup ends, then the outcome. The status is 200 once the descriptors
// are read; the last line says whether the rest went well.
func (s *Server) holders(w http.ResponseWriter, r *http.Request) {
	c, in, ok := s.cidIn(w, r)
	if !ok {
		return
	}
	send := lineSender[HolderLine](w)
	sent := false
	fh, err := s.n.Holders(r.Context(), c, in, func(ph node.PieceHolders) {
		sent = true
		send(HolderLine{Index: ph.Index, CID: ph.Link.CID.String(), Size: ph.Link.Size, Data: ph.Data, Holders: peerStrings(ph.Holders)})
	})
	if err != nil && !sent {
		s.fail(w, err) // the descriptors could not be read: a plain error
		return
	}
	last := HolderLine{Done: true, Replicas: fh.Replicas, Keepers: peerStrings(fh.Keepers)}
	if err != nil {
		last.Error = err.Error()
	}
	send(last)
}

// Holders lists the holders of k's pieces (calling piece for each) and
// returns the outcome, whose Error says what went wrong after the first
// piece.
func (c *Client) Holders(ctx context.Context, k cid.Cid, piece func(HolderLine)) (HolderLine, error) {
	resp, err := c.do(ctx, http.MethodGet, "/holders/"+k.String(), nil, nil, -1)
	if err != nil {
		return HolderLine{}, err
	}
	defer resp.Body.Close()
	return readOutcome(resp.Body, "holders of "+k.String(), func(l HolderLine) bool { return l.Done }, piece)
}

// lineSender answers w with JSON lines, each flushed as it is sent: the
// status (200) and type go with the first.
func lineSender[L any](w http.ResponseWriter) func(L) {
	var enc *json.Encoder
	fl, _ := w.(http.Flusher)
	return func(l L) {
		if enc == nil {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(w)
		}
		enc.Encode(l)
		if fl != nil {
			fl.Flush()
		}
	}
}

// readOutcome reads an answer of JSON lines: each to step, until the one
// done says is the outcome, which it returns. what names the call in
// errors.
func readOutcome[L any](body io.Reader, what string, done func(L) bool, step func(L)) (L, error) {
	var zero L
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l L
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return zero, fmt.Errorf("node API: %s: malformed line %.100q: %w", what, sc.Text(), err)
		}
		if done(l) {
			return l, nil
		}
		if step != nil {
			step(l)
		}
	}
	if err := sc.Err(); err != nil {
		return zero, fmt.Errorf("node API: %s: %w", what, err)
	}
	return zero, fmt.Errorf("node API: %s: the answer ended before its outcome", what)
}

// peerStrings is ps as text.
func peerStrings(ps []peer.ID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
