"""axe-core in the browser tests: inject the vendored copy into a page and report serious or critical violations."""

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "assets" / "axe-core" / "axe.min.js").read_text()
SERIOUS = ("serious", "critical")


def serious_violations(page) -> list[str]:  # noqa: ANN001
    """Run axe over the page as it is now; one line per serious or critical violation, naming the nodes."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern, so nothing is inlined.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE)
    result = page.evaluate("""async () => {
        const results = await window.axe.run(document, {resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary.split('\\n').slice(1).join(' '))}));
    }""")
    return [f"{v['impact']} {v['id']} ({v['help']}): " + " | ".join(v["nodes"][:5])
            for v in result if v["impact"] in SERIOUS]
