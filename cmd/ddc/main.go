// Command ddc is the ddc node's command line: it creates a repo and puts,
// gets, reads and describes files in it. Run 'ddc help' for the commands and
// see README.md for the exit codes.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every command runs against.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	repoPath       string
	json           bool

	// bucket and token are the -b and --token of a command that works in
	// a bucket (see bucketFlags).
	bucket, token string
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		err = usageErr(fmt.Errorf("%w; run 'ddc help' for the commands", err)) // cobra's own error, not ours
	}
	if err != nil {
		fmt.Fprintf(stderr, "ddc: %v\n", oneLine(err))
	}
	return exitCode(err)
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "ddc",
		Short:         "ddc stores and moves CID-addressed files",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			if e.repoPath == "" {
				e.repoPath = repo.DefaultPath()
			}
		},
	}
	root.PersistentFlags().StringVar(&e.repoPath, "repo", "", "repo directory (default $DDC_PATH or ~/.ddc)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newInitCmd(e),
		newPutCmd(e),
		newGetCmd(e),
		newCatCmd(e),
		newStatCmd(e),
		newLsCmd(e),
		newSearchCmd(e),
		newExportCmd(e),
		newImportCmd(e),
		newRepoCmd(e),
		newPinCmd(e),
		newRmCmd(e),
		newComposeCmd(e),
		newVersionCmd(e),
		newNodeCmd(e),
		newPeersCmd(e),
		newConnectCmd(e),
		newProvidersCmd(e),
		newKeyCmd(e),
		newBucketCmd(e),
		newClusterCmd(e),
		newNameCmd(e),
	)
	return root
}

// jsonFlag adds --json to c.
func (e *env) jsonFlag(c *cobra.Command) {
	c.Flags().BoolVar(&e.json, "json", false, "print JSON for scripts")
}

// openRepo opens the repo the flags name.
func (e *env) openRepo() (*repo.Repo, error) {
	return repo.Open(e.repoPath, nil)
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }

// maxArgs is cobra.MaximumNArgs with a usage error.
func maxArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.MaximumNArgs(n)) }

func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageErr(fmt.Errorf("%s: %w", cmd.CommandPath(), err))
		}
		return nil
	}
}
