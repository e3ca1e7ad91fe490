package main

import (
	"reflect"
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestPostStampsTheOwnerAndEmits(t *testing.T) {
	res := hookstest.Run(post, hookstest.Input{
		Event: "post",
		Data:  map[string]interface{}{"title": "buy milk"},
		Me:    map[string]interface{}{"id": "u1", "username": "ann"},
	})
	if res.Cancel != nil {
		t.Fatalf("cancelled: %+v", res.Cancel)
	}
	if res.Data["owner"] != "u1" || res.Data["createdAt"] == nil {
		t.Errorf("data = %v", res.Data)
	}
	want := []hookstest.Emit{{Event: "todo:created", Data: map[string]interface{}{"title": "buy milk"}, Room: "todos"}}
	if !reflect.DeepEqual(res.Emits, want) {
		t.Errorf("emits = %+v, want %+v", res.Emits, want)
	}
}

func TestPostRefusesAnonymousCallers(t *testing.T) {
	res := hookstest.Run(post, hookstest.Input{Event: "post", Data: map[string]interface{}{"title": "x"}})
	if res.Cancel == nil || res.Cancel.Status != 401 || res.Cancel.IsError {
		t.Fatalf("cancel = %+v, want a deliberate 401", res.Cancel)
	}
	if len(res.Emits) != 0 {
		t.Errorf("emitted %+v", res.Emits)
	}
}
