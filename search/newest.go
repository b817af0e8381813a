package search

import (
	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// Newest picks, among the files added to it, the newest: the one with the
// greatest timestamp tag (a file without one is older than any with one),
// then the greatest CID. Add every result of a search for a file-path to
// find the file that path names now.
type Newest struct {
	best cid.Cid
	at   string
}

// Add considers the file c with tags.
func (n *Newest) Add(c cid.Cid, tags []pieces.Tag) {
	at := ""
	for _, t := range tags {
		if t.Key == pieces.TagTimestamp && string(t.Value) > at {
			at = string(t.Value)
		}
	}
	if !n.best.Defined() || at > n.at || (at == n.at && c.String() > n.best.String()) {
		n.best, n.at = c, at
	}
}

// Best is the newest file so far; undefined when none was added.
func (n *Newest) Best() cid.Cid { return n.best }
