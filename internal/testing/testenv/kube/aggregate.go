package kube

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// aggregateClusterRoles does once what kube-controller-manager's
// clusterrole-aggregation controller does all the time: it fills the
// rules of every ClusterRole with an aggregationRule (admin, edit, view)
// from the ClusterRoles its selectors match. Without it those roles are
// empty here, and binding view would grant nothing. Aggregation nests
// (view's rules are part of edit's), so it runs until nothing changes.
func aggregateClusterRoles(ctx context.Context, c kubernetes.Interface) error {
	for range 5 {
		roles, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		changed := false
		for _, role := range roles.Items {
			if role.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range role.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					return fmt.Errorf("ClusterRole %s: %w", role.Name, err)
				}
				for _, other := range roles.Items {
					if other.Name == role.Name || !s.Matches(labels.Set(other.Labels)) {
						continue
					}
					for _, r := range other.Rules {
						if !slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return reflect.DeepEqual(x, r) }) {
							rules = append(rules, r)
						}
					}
				}
			}
			if reflect.DeepEqual(rules, role.Rules) {
				continue
			}
			role.Rules = rules
			if _, err := c.RbacV1().ClusterRoles().Update(ctx, &role, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("ClusterRole %s: %w", role.Name, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}
