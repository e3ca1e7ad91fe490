package main

import (
	"strings"
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		title interface{}
		want  map[string]string
	}{
		{"buy milk", map[string]string{}},
		{"", map[string]string{"title": "is required"}},
		{nil, map[string]string{"title": "is required"}},
		{strings.Repeat("x", 101), map[string]string{"title": "is too long"}},
	} {
		res := hookstest.Run(validate, hookstest.Input{Event: "validate", Data: map[string]interface{}{"title": tc.title}})
		if len(res.Errors) != len(tc.want) || res.Errors["title"] != tc.want["title"] {
			t.Errorf("title %v: errors = %v, want %v", tc.title, res.Errors, tc.want)
		}
		if res.Cancel != nil {
			t.Errorf("title %v: cancelled: %+v", tc.title, res.Cancel)
		}
	}
}
