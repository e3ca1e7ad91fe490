package todos

import (
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestValidate(t *testing.T) {
	ok := hookstest.Run(Run, hookstest.Input{Event: "validate", Data: map[string]interface{}{"title": "buy milk", "priority": 3}})
	if len(ok.Errors) != 0 {
		t.Errorf("a good todo: errors %v", ok.Errors)
	}
	bad := hookstest.Run(Run, hookstest.Input{Event: "validate", Data: map[string]interface{}{"title": " ", "priority": 11}})
	if bad.Errors["title"] != "is required" || bad.Errors["priority"] != "must be from 1 to 10" {
		t.Errorf("a bad todo: errors %v", bad.Errors)
	}
}
