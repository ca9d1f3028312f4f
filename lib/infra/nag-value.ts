import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * A value with tokens (an ARN) as cdk-nag prints it in a finding id: resolved by the stack of
 * `scope`, then flattened the way cdk-nag flattens CloudFormation references (`Fn::Join` joined,
 * `{Ref: X}` as `<X>`, `{Fn::GetAtt: [X, Y]}` as `<X.Y>`). With a concrete environment the region,
 * account and partition are literals; environment-agnostic they are `<AWS::Region>` and so on.
 */
export function nagValue(scope: IConstruct, value: string): string {
  return nagFlatten(Stack.of(scope).resolve(value));
}

/** A resolved CloudFormation value flattened as cdk-nag prints it (see nagValue). */
export function nagFlatten(resolved: unknown): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if (o['Fn::Sub']) return visit(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return visit(o['Fn::ImportValue']);
    if (o.Ref) return `<${visit(o.Ref)}>`;
    return JSON.stringify(node);
  };
  return visit(resolved);
}
