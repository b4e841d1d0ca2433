// Package object reads one Kubernetes object for the test tools (kstatus, luahealth).
package object

import (
	"fmt"
	"io"
	"os"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// Read decodes JSON or YAML from path ("" or "-": stdin) the way an unstructured object holds it
// (integers as int64).
func Read(path string) (map[string]any, error) {
	var raw []byte
	var err error
	if path == "" || path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	doc, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("the object is neither JSON nor YAML: %w", err)
	}
	obj := map[string]any{}
	if err := utiljson.Unmarshal(doc, &obj); err != nil {
		return nil, fmt.Errorf("the object is not a JSON object: %w", err)
	}
	return obj, nil
}
