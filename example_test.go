package pivot_test

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
)

// A pivot and one node on loopback: a write on the node reaches the pivot.
func ExampleSetup() {
	config := pivot.Config{
		Keys:      []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:  "things/*",
		Token:     "change-me",
		ClusterID: "example",
	}

	pivotRole := &ooo.Server{Silence: true}
	pivot.Setup(pivotRole, config) // hub.Pivot == "": this is the pivot
	if err := pivotRole.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer pivotRole.Close(os.Interrupt)

	node := &ooo.Server{Silence: true}
	node.Pivot = pivotRole.Address
	nodeRole := pivot.Setup(node, config)
	if err := node.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close(os.Interrupt)
	// On the pivot, the node registers as an entry under NodesKey.
	if _, err := pivotRole.Storage.Set("things/node1", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, node.Address))); err != nil {
		fmt.Println(err)
		return
	}

	if _, err := node.Storage.Set("settings", json.RawMessage(`{"theme":"dark"}`)); err != nil {
		fmt.Println(err)
		return
	}
	// Poll the pivot with a deadline.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); <-tick.C {
		if raw, err := pivotRole.Storage.Get("settings"); err == nil {
			var obj struct {
				Data json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(raw, &obj)
			fmt.Println("pivot has", string(obj.Data))
			fmt.Println("role:", nodeRole.Status().Role)
			return
		}
	}
	fmt.Println("not synced")
	// Output:
	// pivot has {"theme":"dark"}
	// role: node
}
