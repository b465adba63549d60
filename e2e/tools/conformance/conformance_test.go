// The Gateway API conformance suite, run against kongress on the local cluster, limited
// to the tests that judge status alone. No Kong runs here, so no test that sends traffic
// can pass, and none may try: every HTTP and gRPC client the suite holds is replaced by
// one that refuses before dialling, so a test that reaches for traffic fails instead of
// sending packets to an address the cluster handed out.
//
// Which tests run, and what each is expected to do, is in tests.txt beside this file.
// hack/conformance.sh builds the cluster, starts kongress and compares the outcome.
package conformance_test

import (
	"bufio"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/grpc"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
)

var (
	testList = flag.String("kongress-tests", "tests.txt", "file naming the conformance tests and their expected outcomes")
	outcomes = flag.String("kongress-outcomes", "pass,fail", "run the listed tests expected to end so (comma-separated: pass, fail)")
)

var errNoTraffic = errors.New("kongress conformance run: sending traffic is refused (no Kong runs here, and tests send packets only to loopback)")

type refuseHTTP struct{}

func (refuseHTTP) CaptureRoundTrip(roundtripper.Request) (*roundtripper.CapturedRequest, *roundtripper.CapturedResponse, error) {
	return nil, nil, errNoTraffic
}

type refuseGRPC struct{}

func (refuseGRPC) SendRPC(*testing.T, string, grpc.ExpectedResponse, time.Duration) (*grpc.Response, error) {
	return nil, errNoTraffic
}

func (refuseGRPC) Close() {}

// listedTests reads tests.txt: one test per line, its short name and its expected outcome
// (pass, fail, or skip: listed for the record, never run); '#' starts a comment. It returns
// every listed test, and whether it is to run (its outcome is one of -kongress-outcomes).
func listedTests(t *testing.T) map[string]bool {
	wanted := map[string]bool{}
	for _, outcome := range strings.Split(*outcomes, ",") {
		wanted[strings.TrimSpace(outcome)] = true
	}
	file, err := os.Open(*testList)
	if err != nil {
		t.Fatalf("reading the test list: %v", err)
	}
	defer file.Close()
	names := map[string]bool{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		line, _, _ := strings.Cut(scanner.Text(), "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case len(fields) != 2:
			t.Fatalf("tests.txt: %q is not <ShortName> <pass|fail|skip>", scanner.Text())
		case fields[1] == "pass" || fields[1] == "fail" || fields[1] == "skip":
			names[fields[0]] = wanted[fields[1]]
		default:
			t.Fatalf("tests.txt: %q expects %q, not pass, fail or skip", fields[0], fields[1])
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatalf("reading the test list: %v", err)
	}
	return names
}

func TestConformance(t *testing.T) {
	names := listedTests(t)
	var selected []suite.ConformanceTest
	for _, test := range tests.ConformanceTests {
		if run, listed := names[test.ShortName]; listed {
			if run {
				selected = append(selected, test)
			}
			delete(names, test.ShortName)
		}
	}
	for name := range names {
		t.Fatalf("tests.txt names %q, which conformance v1.5.1 does not have", name)
	}

	options := conformance.DefaultOptions(t)
	options.RoundTripper = refuseHTTP{}
	options.GRPCClient = refuseGRPC{}

	conformanceSuite, err := suite.NewConformanceTestSuite(options)
	if err != nil {
		t.Fatalf("setting up the suite: %v", err)
	}
	conformanceSuite.Setup(t, selected)
	if err := conformanceSuite.Run(t, selected); err != nil {
		t.Fatalf("running the suite: %v", err)
	}
}
