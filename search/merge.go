package search

import (
	"bytes"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// Result is one file found: its root descriptor's CID, its size and its
// tags (all of them, searchable or not), so a listing needs no further
// request.
type Result struct {
	CID  cid.Cid
	Size uint64
	Tags []pieces.Tag
}

// Page is a holder's answer: results in sort-key order, and whether more
// may follow the last.
type Page struct {
	Results []Result
	More    bool
}

// Merged is the merge of several holders' pages.
type Merged struct {
	Results []Result
	More    bool
	Last    []byte // sort key of the last result, for the next cursor
	Dropped int    // results a holder sent that do not match the query or come out of order
}

// Merge merges holders' pages of q that continue after the sort key
// after, into one page of at most limit results. Each holder's results
// are checked against q (a holder that lies about what matches is caught
// here; tags themselves are only as true as the holder is until the
// descriptor is fetched and verified), sorted, and de-duplicated by CID.
// A holder that had more than it sent bounds the page: nothing past its
// last result can be given before its next page is seen.
func Merge(q Query, after []byte, limit int, pages []Page) Merged {
	type keyed struct {
		k []byte
		r Result
	}
	var all []keyed
	var bound []byte
	var m Merged
	plan := q.Plan(nil)
	for _, p := range pages {
		var last []byte
		for _, r := range p.Results {
			k, ok := plan.sortKey(r.Tags, r.CID)
			if !ok || !q.Matches(r.Tags) || (after != nil && bytes.Compare(k, after) <= 0) || (last != nil && bytes.Compare(k, last) <= 0) {
				m.Dropped++
				continue
			}
			last = k
			all = append(all, keyed{k, r})
		}
		if p.More && last != nil && (bound == nil || bytes.Compare(last, bound) < 0) {
			bound = last
		}
		if p.More && last == nil {
			m.More = true // a holder had more but none usable: say so
		}
	}
	slices.SortStableFunc(all, func(a, b keyed) int { return bytes.Compare(a.k, b.k) })
	for i, e := range all {
		if i > 0 && bytes.Equal(e.k, all[i-1].k) {
			continue // the same file from another holder
		}
		if bound != nil && bytes.Compare(e.k, bound) > 0 {
			m.More = true
			break
		}
		if len(m.Results) == limit {
			m.More = true
			break
		}
		m.Results = append(m.Results, e.r)
		m.Last = e.k
	}
	if bound != nil {
		m.More = true // the bounding holder has more past its last
	}
	return m
}
