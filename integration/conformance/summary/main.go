// Command summary reads the test2json report of ipfs/gateway-conformance
// (its --json output) and prints, per trustless spec, how many cases
// passed: a case is a subtest one level below a Test function (what the
// suite's own dashboard counts), and a check one level below that. It
// exits 1 when a case failed, and lists the failed cases.
//
//	go run ./integration/conformance/summary report.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// specOf names the spec a Test function of the suite checks, after
// RunWithSpecs in its tests/trustless_gateway_*_test.go.
func specOf(test string) string {
	switch {
	case strings.HasPrefix(test, "TestTrustlessRaw"):
		return "trustless-block-gateway"
	case test == "TestTrustlessCarOrderAndDuplicates":
		return "trustless-car-gateway-optional"
	case strings.HasPrefix(test, "TestTrustlessCar"):
		return "trustless-car-gateway"
	}
	return ""
}

type event struct {
	Action string
	Test   string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary REPORT.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	result := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		if e.Action == "pass" || e.Action == "fail" {
			result[e.Test] = e.Action
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "read %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	type count struct{ cases, passed, checks, checksPassed int }
	counts := map[string]*count{}
	var failed []string
	for name, r := range result {
		parts := strings.Split(name, "/")
		spec := specOf(parts[0])
		if spec == "" || len(parts) < 2 || len(parts) > 3 {
			continue
		}
		c := counts[spec]
		if c == nil {
			c = &count{}
			counts[spec] = c
		}
		if len(parts) == 3 {
			c.checks++
			if r == "pass" {
				c.checksPassed++
			}
			continue
		}
		c.cases++
		if r == "pass" {
			c.passed++
		} else {
			failed = append(failed, name)
		}
	}
	var total count
	for _, spec := range []string{"trustless-block-gateway", "trustless-car-gateway", "trustless-car-gateway-optional"} {
		c := counts[spec]
		if c == nil {
			c = &count{}
		}
		fmt.Printf("%-32s %3d of %3d cases pass (%d of %d checks)\n", spec, c.passed, c.cases, c.checksPassed, c.checks)
		total.cases += c.cases
		total.passed += c.passed
		total.checks += c.checks
		total.checksPassed += c.checksPassed
	}
	fmt.Printf("%-32s %3d of %3d cases pass (%d of %d checks)\n", "all three", total.passed, total.cases, total.checksPassed, total.checks)
	sort.Strings(failed)
	for _, name := range failed {
		fmt.Println("FAIL", name)
	}
	if len(failed) > 0 || total.cases == 0 {
		os.Exit(1)
	}
}
