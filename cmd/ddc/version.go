package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what 'ddc version' tells, from the binary's build info.
type versionInfo struct {
	Version  string `json:"version"`            // the module's, or "(devel)"
	Revision string `json:"revision,omitempty"` // the VCS commit it was built from
	Time     string `json:"time,omitempty"`     // that commit's time
	Modified bool   `json:"modified,omitempty"` // built with uncommitted changes
	Go       string `json:"go"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "version",
		Short: "Print ddc's version, the commit it was built from, and its Go",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			if e.json {
				return writeJSON(e.stdout, v)
			}
			line := "ddc " + v.Version
			if v.Revision != "" {
				line += " (" + v.Revision
				if v.Modified {
					line += ", modified"
				}
				line += " " + v.Time + ")"
			}
			fmt.Fprintf(e.stdout, "%s %s\n", line, v.Go)
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}
