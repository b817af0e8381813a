package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/pieces"
)

func newComposeCmd(e *env) *cobra.Command {
	var tags []string
	c := &cobra.Command{
		Use:   "compose RANGE...",
		Short: "Store a file made of byte ranges of other files, copying no data",
		Long: `Store a file whose content is the given ranges of other files, in order,
and print its CID. A RANGE is CID (the whole file), CID:OFFSET (from OFFSET
to the end) or CID:OFFSET+LENGTH. The new file's descriptors reference the
sources' own pieces, so no data piece is written; the sources stay alive
while the new file is kept. Needs the running node.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(errors.New("compose: give at least one RANGE"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := buildOptions(tags, "1MiB", "4KiB", pieces.DefaultHash.Name)
			if err != nil {
				return usageErr(err)
			}
			ranges := make([]pieces.Range, len(args))
			for i, a := range args {
				if ranges[i], err = parseRange(a); err != nil {
					return usageErr(err)
				}
			}
			cl, err := e.daemon(cmd.Context())
			if err != nil {
				return err
			}
			if cl == nil {
				return errors.New("compose needs the running node (ddc node run)")
			}
			for i, r := range ranges {
				if r.Size == 0 { // to the end: the node's stat says where that is
					st, err := cl.Stat(cmd.Context(), r.CID)
					if err != nil {
						return err
					}
					if r.Offset > st.Size {
						return usageErr(fmt.Errorf("compose %s: offset %d is past its end (%d bytes)", args[i], r.Offset, st.Size))
					}
					ranges[i].Size = st.Size - r.Offset
				}
			}
			res, err := cl.Compose(cmd.Context(), ranges, opt)
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, map[string]any{"cid": res.CID, "size": res.Size, "pieces": res.Pieces})
			}
			fmt.Fprintln(e.stdout, res.CID)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&tags, "tag", "t", nil, "tag KEY=VALUE of the new file (repeatable)")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// parseRange reads CID, CID:OFFSET or CID:OFFSET+LENGTH; Size 0 means to
// the end.
func parseRange(s string) (pieces.Range, error) {
	id, rest, hasRange := strings.Cut(s, ":")
	c, err := pieces.ParseCID(id)
	if err != nil {
		return pieces.Range{}, err
	}
	r := pieces.Range{CID: c}
	if !hasRange {
		return r, nil
	}
	off, length, hasLen := strings.Cut(rest, "+")
	if r.Offset, err = strconv.ParseUint(off, 10, 64); err != nil {
		return r, fmt.Errorf("range %q: offset %q is not a byte count", s, off)
	}
	if hasLen {
		if r.Size, err = strconv.ParseUint(length, 10, 64); err != nil || r.Size == 0 {
			return r, fmt.Errorf("range %q: length %q is not a positive byte count", s, length)
		}
	}
	return r, nil
}
