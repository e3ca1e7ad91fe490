// Command deployd-gofix prints, as one JSON array, the edits that make each named hook file build
// (see package gofix): imports to add and same-length renames. deployd-ts runs it on the copies of
// the hook files in a generated module before `go build`; it changes no file itself.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/deployd-ts/deployd-ts/hooks-go/internal/gofix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deployd-gofix file.go...")
		os.Exit(2)
	}
	results := []gofix.Result{}
	for _, file := range os.Args[1:] {
		src, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results = append(results, gofix.Fix(file, src))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
