import { BlockList, isIP } from "node:net";
import type { SandboxNetworkPolicy } from "../spec/sandbox-spec.js";

/**
 * Addresses no sandbox reaches unless a policy names them: loopback, link-local (cloud metadata
 * services live there), private and shared ranges, and the unspecified, multicast and reserved ones.
 */
const SPECIAL_RANGES: Array<[string, number, "ipv4" | "ipv6"]> = [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["224.0.0.0", 3, "ipv4"],
  ["::", 127, "ipv6"],
  ["64:ff9b:1::", 48, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"],
];

const specialAddresses = new BlockList();
for (const [network, prefix, type] of SPECIAL_RANGES) specialAddresses.addSubnet(network, prefix, type);

const domainPattern = /^(\*\.)?(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/i;

/** The older object forms of the policy, still accepted by `runAgentTask` and mapped to {@link SandboxNetworkPolicy}. */
export type LegacyNetworkPolicy =
  | {
      /** Now `"none"`. */
      mode: "none";
    }
  | {
      /** Now `"open"`. */
      mode: "open";
    }
  | {
      /** Now `{ allow: [...hosts, ...cidrs] }`. */
      mode: "allow-list";
      /** Host names allowed. */
      hosts?: string[];
      /** CIDR ranges allowed. */
      cidrs?: string[];
    };

/** Why an allow-list entry is not one: undefined when it is a domain, `*.domain`, an address or a CIDR range. */
export function allowEntryProblem(entry: string): string | undefined {
  if (typeof entry !== "string" || entry === "") return "an entry must be a non-empty string";
  if (entry.includes("://")) return `${JSON.stringify(entry)} is a URL: give its host name only`;
  if (entry.includes("/")) {
    const [address, prefix, extra] = entry.split("/");
    const family = isIP(address ?? "");
    const bits = Number(prefix);
    if (extra !== undefined || family === 0 || !/^\d{1,3}$/.test(prefix ?? "") || bits > (family === 4 ? 32 : 128)) return `${JSON.stringify(entry)} is not a CIDR range`;
    return undefined;
  }
  if (isIP(entry.replace(/^\[|\]$/g, "")) !== 0) return undefined;
  if (!domainPattern.test(entry)) return `${JSON.stringify(entry)} is neither a domain name, *.domain, an IP address nor a CIDR range`;
  return undefined;
}

/**
 * The policy when the caller gives none: the model and nothing else. Behind the egress proxy the
 * model is the proxy's own route, so the list is empty; elsewhere it names the model's API host
 * (unless that is a loopback or private address, which no default admits).
 */
export function defaultNetworkPolicy(provider: { egressProxy?: boolean; appliesNetworkPolicy?: boolean }, model: { apiHost: string }): SandboxNetworkPolicy {
  // A sandbox that shares the host's network (the unisolated local one) can apply no policy: it warns that it is not isolated.
  if (provider.appliesNetworkPolicy === false) return "open";
  if (provider.egressProxy === true) return { allow: [] };
  const host = model.apiHost.replace(/^\[|\]$/g, "");
  const special = host === "" || host === "localhost" || (isIP(host) !== 0 && isSpecialAddress(host));
  return { allow: special ? [] : [host] };
}

/** Maps the older `{ mode }` forms onto the policy type; anything else is returned as it is. */
export function normalizeNetworkPolicy(value: SandboxNetworkPolicy | LegacyNetworkPolicy): SandboxNetworkPolicy {
  if (typeof value === "string" || !("mode" in value)) return value;
  if (value.mode === "allow-list") return { allow: [...(value.hosts ?? []), ...(value.cidrs ?? [])] };
  return value.mode;
}

/** The decision for one connection. */
export type EgressDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * An allow-list compiled for checks: host names match an entry exactly or as a subdomain of it
 * (`example.com` and `*.example.com` both admit `api.example.com`; only the bare form admits
 * `example.com` itself); addresses match address and CIDR entries.
 */
export class EgressRules {
  private readonly domains: Array<{ name: string; subdomainsOnly: boolean }> = [];
  private readonly ranges = new BlockList();
  readonly entries: readonly string[];

  private readonly anyName: boolean;

  constructor(allow: readonly string[], options: { anyName?: boolean } = {}) {
    this.entries = [...allow];
    this.anyName = options.anyName ?? false;
    for (const raw of allow) {
      const entry = raw.toLowerCase().replace(/^\[|\]$/g, "");
      if (entry.includes("/")) {
        const [address, prefix] = entry.split("/") as [string, string];
        this.ranges.addSubnet(address, Number(prefix), isIP(address) === 6 ? "ipv6" : "ipv4");
      } else if (isIP(entry) !== 0) {
        this.ranges.addAddress(entry, isIP(entry) === 6 ? "ipv6" : "ipv4");
      } else if (entry.startsWith("*.")) {
        this.domains.push({ name: entry.slice(2).replace(/\.$/, ""), subdomainsOnly: true });
      } else {
        this.domains.push({ name: entry.replace(/\.$/, ""), subdomainsOnly: false });
      }
    }
  }

  /** Whether a host name (not an address) is on the list. */
  allowsName(host: string): boolean {
    const name = host.toLowerCase().replace(/\.$/, "");
    if (this.anyName) return true;
    return this.domains.some((domain) => name.endsWith(`.${domain.name}`) || (!domain.subdomainsOnly && name === domain.name));
  }

  /** Whether an address is named by an address or CIDR entry. */
  namesAddress(address: string): boolean {
    const plain = unmapped(address);
    return this.ranges.check(plain, isIP(plain) === 6 ? "ipv6" : "ipv4");
  }

  /**
   * Whether a resolved (or literal) address may be connected to: named by the list, or, for a host
   * name on the list, any public address. Special ranges need an entry of their own.
   */
  allowsAddress(address: string, viaAllowedName: boolean): EgressDecision {
    if (this.namesAddress(address)) return { allowed: true };
    const plain = unmapped(address);
    if (isSpecialAddress(plain)) return { allowed: false, reason: `${plain} is a loopback, link-local, private or reserved address` };
    if (viaAllowedName) return { allowed: true };
    return { allowed: false, reason: `${plain} is not on the allow-list` };
  }
}

/** True for loopback, link-local, private, shared, multicast and reserved addresses. */
export function isSpecialAddress(address: string): boolean {
  const plain = unmapped(address);
  return specialAddresses.check(plain, isIP(plain) === 6 ? "ipv6" : "ipv4");
}

/** `::ffff:127.0.0.1` is 127.0.0.1: checks see the IPv4 address inside a mapped IPv6 one. */
function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match ? match[1]! : address;
}
