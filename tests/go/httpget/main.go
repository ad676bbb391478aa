// httpget URL: fetch URL with Go's own HTTP client and resolver, print the body to stdout.
//
// Built static (CGO_ENABLED=0, -tags netgo): no libc, so an LD_PRELOAD library never runs in
// it, and host names are resolved by Go itself from /etc/hosts and /etc/resolv.conf.
// Exit status 0 on a 2xx answer; otherwise one line on stderr and exit status 1.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func fail(format string, args ...any) {
	line := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	fmt.Fprintln(os.Stderr, "httpget: "+line)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpget URL")
		os.Exit(2)
	}
	// No proxy from the environment: the request goes to the URL's host.
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil},
		Timeout:   10 * time.Second,
	}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fail("%s: HTTP %s", os.Args[1], resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("%s: reading the body: %v", os.Args[1], err)
	}
	if _, err := os.Stdout.Write(body); err != nil {
		fail("writing the body: %v", err)
	}
}
