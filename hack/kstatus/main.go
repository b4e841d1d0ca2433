// Command kstatus computes an object's kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute),
// the status kubectl-based tools, Flux and cli-utils appliers read from conditions and
// observedGeneration: Current, InProgress, Failed, Terminating, NotFound or Unknown.
//
// Usage:
//
//	kstatus [FILE|-]                                           an object from a JSON/YAML file or stdin
//	kstatus -kubeconfig K [-context C] [-n NS] RESOURCE NAME   a live object (RESOURCE/NAME works too)
//
// Prints {"status": ..., "message": ...}; exits 1 only when the status cannot be computed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"kubemart.io/hack/internal/object"
)

type output struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "fetch the object live with this kubeconfig")
	kubecontext := flag.String("context", "", "the kubeconfig context to use")
	namespace := flag.String("n", "", "the namespace of a live object (default: the context's)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: kstatus [FILE|-]\n       kstatus -kubeconfig K [-context C] [-n NS] RESOURCE NAME")
		flag.PrintDefaults()
	}
	flag.Parse()
	var (
		obj *unstructured.Unstructured
		err error
	)
	if *kubeconfig != "" {
		if flag.NArg() < 1 || flag.NArg() > 2 {
			flag.Usage()
			os.Exit(2)
		}
		obj, err = fetch(*kubeconfig, *kubecontext, *namespace, flag.Args())
		if apierrors.IsNotFound(err) {
			emit(output{Status: string(status.NotFoundStatus), Message: err.Error()})
			return
		}
	} else {
		if flag.NArg() > 1 {
			flag.Usage()
			os.Exit(2)
		}
		obj, err = read(flag.Arg(0))
	}
	if err != nil {
		fail(err)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fail(err)
	}
	emit(output{Status: res.Status.String(), Message: res.Message})
}

func read(path string) (*unstructured.Unstructured, error) {
	obj, err := object.Read(path)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// fetch reads one object as kubectl get does: short names, categories and RESOURCE/NAME all work.
func fetch(kubeconfig, kubecontext, namespace string, args []string) (*unstructured.Unstructured, error) {
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &kubeconfig
	if kubecontext != "" {
		flags.Context = &kubecontext
	}
	ns := namespace
	if ns == "" {
		var err error
		if ns, _, err = flags.ToRawKubeConfigLoader().Namespace(); err != nil {
			return nil, err
		}
	}
	infos, err := resource.NewBuilder(flags).
		Unstructured().
		NamespaceParam(ns).DefaultNamespace().
		ResourceTypeOrNameArgs(false, args...).
		SingleResourceType().
		Flatten().
		Do().Infos()
	if err != nil {
		return nil, err
	}
	if len(infos) != 1 {
		return nil, fmt.Errorf("%d objects match %v; name one", len(infos), args)
	}
	obj, ok := infos[0].Object.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object type %T", infos[0].Object)
	}
	return obj, nil
}

func emit(out output) {
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
	os.Exit(1)
}
