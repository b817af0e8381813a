package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/repo"
)

// RepoStat is what GET /repo/stat returns: how much the node's store holds.
type RepoStat struct {
	Repo       string `json:"repo"`
	PeerID     string `json:"peer_id"`
	Pieces     uint64 `json:"pieces"`
	PieceBytes uint64 `json:"piece_bytes"`
	Blocks     int    `json:"blocks"`
	DiskBytes  uint64 `json:"disk_bytes"`      // the block files' sizes, holes included
	Allocated  uint64 `json:"allocated_bytes"` // what they take on disk, as du counts it
	DeadBytes  uint64 `json:"dead_bytes"`      // of that, beyond the live pieces
	DirectIO   bool   `json:"direct_io"`
	// InPlacePieces and InPlaceBytes are the live pieces kept in place,
	// in the files InPlace lists, not in block files.
	InPlacePieces uint64      `json:"in_place_pieces"`
	InPlaceBytes  uint64      `json:"in_place_bytes"`
	InPlace       []InPlaceAt `json:"in_place,omitempty"`
}

// InPlaceAt is a file holding pieces in place.
type InPlaceAt struct {
	Path   string `json:"path"`
	Pieces int    `json:"pieces"`
	Bytes  uint64 `json:"bytes"`
}

// StatRepo describes the open repo r, for the API and offline alike.
func StatRepo(ctx context.Context, r *repo.Repo) (RepoStat, error) {
	u, err := r.Store.Usage()
	st := RepoStat{Repo: r.Path, PeerID: r.PeerID().String(), Pieces: u.Pieces, PieceBytes: u.PieceBytes,
		Blocks: u.Blocks, DiskBytes: u.DiskBytes, Allocated: u.AllocatedBytes, DeadBytes: u.DeadBytes, DirectIO: u.DirectIO,
		InPlacePieces: u.InPlacePieces, InPlaceBytes: u.InPlaceBytes}
	if err == nil {
		st.InPlace, err = inPlaceFiles(ctx, r)
	}
	return st, err
}

// inPlaceFiles lists the files of r's store that hold pieces in place.
func inPlaceFiles(ctx context.Context, r *repo.Repo) ([]InPlaceAt, error) {
	fs, err := r.Store.InPlace(ctx)
	var out []InPlaceAt
	for _, f := range fs {
		out = append(out, InPlaceAt{Path: f.Path, Pieces: f.Pieces, Bytes: f.Bytes})
	}
	return out, err
}

func (s *Server) repoStat(w http.ResponseWriter, r *http.Request) {
	st, err := StatRepo(r.Context(), s.n.Repo())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, st)
}

// VerifyLine is one line of GET /repo/verify: a piece that failed, or,
// last, the totals.
type VerifyLine struct {
	CID     string `json:"cid,omitempty"`
	Error   string `json:"error,omitempty"`
	Checked int    `json:"checked"`
	Done    bool   `json:"done,omitempty"`
	// InPlace, on the last line, lists the files holding pieces in place
	// after the check (pieces that failed were dropped).
	InPlace []InPlaceAt `json:"in_place,omitempty"`
}

// repoVerify re-hashes every piece, streaming the bad ones as NDJSON and
// the totals last; a body without the last line was cut short.
func (s *Server) repoVerify(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	n, err := s.n.Repo().Store.VerifyAll(r.Context(), func(c cid.Cid, err error) {
		enc.Encode(VerifyLine{CID: c.String(), Error: err.Error()})
	})
	if err != nil {
		enc.Encode(VerifyLine{Error: err.Error(), Checked: n})
		return
	}
	files, err := inPlaceFiles(r.Context(), s.n.Repo())
	if err != nil {
		enc.Encode(VerifyLine{Error: err.Error(), Checked: n})
		return
	}
	enc.Encode(VerifyLine{Checked: n, Done: true, InPlace: files})
}

// RepoStat reports how much the node's store holds.
func (c *Client) RepoStat(ctx context.Context) (RepoStat, error) {
	var st RepoStat
	return st, c.getJSON(ctx, "/repo/stat", nil, &st)
}

// RepoVerify re-hashes every piece in the node's store, calling bad for
// each that fails, and returns the totals: how many it checked, and the
// files that hold pieces in place.
func (c *Client) RepoVerify(ctx context.Context, bad func(cid, msg string)) (VerifyLine, error) {
	resp, err := c.do(ctx, http.MethodGet, "/repo/verify", nil, nil, -1)
	if err != nil {
		return VerifyLine{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var l VerifyLine
		if err := dec.Decode(&l); err == io.EOF {
			return l, fmt.Errorf("node API repo verify: reply ended before its totals")
		} else if err != nil {
			return l, fmt.Errorf("node API repo verify: %w", err)
		}
		switch {
		case l.Done:
			return l, nil
		case l.CID == "":
			return l, fmt.Errorf("verify: %s", l.Error)
		}
		bad(l.CID, l.Error)
	}
}

// Reindexed is the reply of a reindex.
type Reindexed struct {
	Descriptors int     `json:"descriptors"`
	Seconds     float64 `json:"seconds"`
}

func (s *Server) repoReindex(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	n, err := s.n.Repo().Store.Reindex(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Reindexed{Descriptors: n, Seconds: time.Since(start).Seconds()})
}

// RepoReindex rebuilds the node's tag index.
func (c *Client) RepoReindex(ctx context.Context) (Reindexed, error) {
	var out Reindexed
	return out, c.callJSON(ctx, http.MethodPost, "/repo/reindex", nil, &out)
}
