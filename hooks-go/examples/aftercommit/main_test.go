package main

import (
	"reflect"
	"testing"

	"github.com/deployd-ts/deployd-ts/hooks-go/hookstest"
)

func TestAfterCommitShapesTheResponse(t *testing.T) {
	res := hookstest.Run(aftercommit, hookstest.Input{Event: "aftercommit", Method: "POST", Collection: "todos", Data: map[string]interface{}{"id": "t1"}})
	want := &hookstest.Response{AddFields: map[string]interface{}{"collection": "todos"}, Messages: []string{"todo created"}, Status: 201}
	if !reflect.DeepEqual(res.Response, want) {
		t.Errorf("response = %+v, want %+v", res.Response, want)
	}
}
