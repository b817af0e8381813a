package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// scrubFile records when the last scrub pass began, so that a node that
// restarts does not begin one more often than the interval.
const scrubFile = "scrub.json"

type scrubState struct {
	Began   time.Time `json:"began"`
	Ended   time.Time `json:"ended,omitzero"`
	Checked int       `json:"checked"`
	Bad     int       `json:"bad"`
}

// startScrub re-hashes every stored piece against its CID, a pass at a
// time at a bounded rate, a pass no sooner than the interval after the
// last one began. A piece that fails is fetched again from its other
// holders, which replaces the bad copy; when none has it, it is reported
// (log, metric, repo verify). The store's CRC keeps bad bytes from being
// served meanwhile.
func (n *Node) startScrub() {
	sc := n.repo.Config.Store
	interval := time.Duration(sc.ScrubInterval)
	if interval == 0 {
		interval = repo.DefaultScrubInterval
	}
	if interval < 0 {
		return
	}
	rate := sc.ScrubRateMiB
	if rate <= 0 {
		rate = repo.DefaultScrubRateMiB
	}
	n.wg.Go(func() {
		path := filepath.Join(n.repo.Path, scrubFile)
		for {
			var last scrubState
			if b, err := os.ReadFile(path); err == nil {
				json.Unmarshal(b, &last)
			} else {
				// A new repo: its pieces were just checked as they came.
				// The first pass is an interval from now.
				last.Began = time.Now()
				writeScrub(path, last)
			}
			wait := time.Until(last.Began.Add(interval))
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(max(wait, 0)):
			}
			st := scrubState{Began: time.Now()}
			writeScrub(path, st)
			st.Checked, st.Bad = n.scrubPass(n.ctx, float64(rate)*(1<<20))
			if n.ctx.Err() != nil {
				return
			}
			st.Ended = time.Now()
			writeScrub(path, st)
			n.log.Info("scrub pass over", "checked", st.Checked, "bad", st.Bad, "took", st.Ended.Sub(st.Began).Round(time.Second))
		}
	})
}

func writeScrub(path string, st scrubState) {
	b, _ := json.Marshal(st)
	os.WriteFile(path, b, 0o600)
}

// scrubPass checks every piece once, reading at most rate bytes a second,
// and returns how many it checked and how many failed.
func (n *Node) scrubPass(ctx context.Context, rate float64) (checked, bad int) {
	st := n.repo.Store
	start := time.Now()
	var read float64
	var buf []byte
	st.List(ctx, func(c cid.Cid, size int) error {
		if ahead := time.Duration(read/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(ahead):
			}
		}
		read += float64(size)
		var err error
		buf, err = st.ReadPiece(ctx, c, buf)
		if errors.Is(err, pieces.ErrNotFound) {
			return nil // dropped since the listing
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopping: nothing was checked
		}
		crcOK := err == nil
		if err == nil {
			err = pieces.Verify(c, buf)
		}
		checked++
		n.metrics.scrubbed.Inc()
		if err == nil {
			return nil
		}
		bad++
		n.metrics.scrubBad.Inc()
		n.log.Warn("scrub: a stored piece fails its check; fetching it again from its other holders", "cid", c, "err", err)
		if err := n.repair(ctx, c, crcOK); err != nil {
			n.log.Error("scrub: cannot repair the piece: no other holder sent it; repo verify lists it", "cid", c, "err", err)
			return nil
		}
		n.metrics.scrubRepaired.Inc()
		n.log.Info("scrub: repaired the piece from another holder", "cid", c)
		return nil
	})
	return checked, bad
}

// repair fetches piece c from the holders of c, as a read that finds its
// local copy corrupt does: the good copy replaces the bad one. A copy
// that passes its CRC but not its hash (bad before it was stored) is
// dropped first, since reads would take it for good. The repair holds
// only once the stored copy verifies.
func (n *Node) repair(ctx context.Context, c cid.Cid, crcOK bool) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.FindTimeout+time.Minute)
	defer cancel()
	st := n.repo.Store
	if crcOK {
		if err := st.Delete(c); err != nil {
			return err
		}
	}
	r := n.NewReader(c)
	if err := r.g.enter(ctx); err != nil {
		return errors.Join(err, r.Close())
	}
	_, err := r.g.GetPiece(ctx, c)
	if err := errors.Join(err, r.Close()); err != nil {
		return err
	}
	data, err := st.GetPiece(ctx, c)
	if err == nil {
		err = pieces.Verify(c, data)
	}
	return err
}
