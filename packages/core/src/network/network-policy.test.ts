import { describe, expect, it } from "vitest";
import { allowEntryProblem, defaultNetworkPolicy, EgressRules, isSpecialAddress, normalizeNetworkPolicy } from "./network-policy.js";

describe("network policy rules", () => {
  it("a bare domain admits itself and its subdomains, *.domain only subdomains, and nothing that merely ends the same", () => {
    const rules = new EgressRules(["example.com", "*.pkg.test"]);
    expect(rules.allowsName("example.com")).toBe(true);
    expect(rules.allowsName("API.Example.com.")).toBe(true);
    expect(rules.allowsName("badexample.com")).toBe(false);
    expect(rules.allowsName("registry.pkg.test")).toBe(true);
    expect(rules.allowsName("pkg.test")).toBe(false);
  });

  it("special ranges are refused even behind an allowed name unless an address entry names them; mapped IPv6 is seen through", () => {
    const rules = new EgressRules(["example.com", "10.1.0.0/16"]);
    for (const address of ["127.0.0.1", "::1", "169.254.169.254", "192.168.1.1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"]) {
      expect(rules.allowsAddress(address, true)).toMatchObject({ allowed: false });
    }
    expect(rules.allowsAddress("10.1.2.3", false)).toEqual({ allowed: true });
    expect(rules.allowsAddress("10.2.0.1", true)).toMatchObject({ allowed: false });
    expect(rules.allowsAddress("93.184.216.34", true)).toEqual({ allowed: true });
    expect(rules.allowsAddress("93.184.216.34", false)).toMatchObject({ allowed: false, reason: expect.stringContaining("not on the allow-list") });
    expect(isSpecialAddress("8.8.8.8")).toBe(false);
  });

  it("checks entries, maps the older forms, and never defaults to a loopback model host", () => {
    expect(allowEntryProblem("example.com")).toBeUndefined();
    expect(allowEntryProblem("*.example.com")).toBeUndefined();
    expect(allowEntryProblem("::1")).toBeUndefined();
    expect(allowEntryProblem("2001:db8::/32")).toBeUndefined();
    expect(allowEntryProblem("10.0.0.0/33")).toMatch(/not a CIDR/);
    expect(allowEntryProblem("https://example.com")).toMatch(/is a URL/);
    expect(allowEntryProblem("exa mple.com")).toMatch(/neither/);
    expect(normalizeNetworkPolicy({ mode: "allow-list", hosts: ["a.test"], cidrs: ["10.0.0.0/8"] })).toEqual({ allow: ["a.test", "10.0.0.0/8"] });
    expect(normalizeNetworkPolicy({ mode: "none" })).toBe("none");
    expect(normalizeNetworkPolicy({ mode: "open" })).toBe("open");
    expect(defaultNetworkPolicy({}, { apiHost: "api.anthropic.com" })).toEqual({ allow: ["api.anthropic.com"] });
    expect(defaultNetworkPolicy({}, { apiHost: "127.0.0.1" })).toEqual({ allow: [] });
    expect(defaultNetworkPolicy({ egressProxy: true }, { apiHost: "api.anthropic.com" })).toEqual({ allow: [] });
  });
});
