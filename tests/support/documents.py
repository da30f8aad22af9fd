"""Small documents for the knowledge tests, made on the spot: Markdown, text, HTML and PDF."""

from __future__ import annotations

from pathlib import Path

MARKDOWN = """# Gardening guide

Plants need light and water.

## Tomatoes

Tomatoes want six hours of sun a day. Water them at the base, never the leaves.

### Pests

Aphids on tomatoes are washed off with a jet of water.

```
# not a heading: code
```

## Roses

Prune roses in late winter, just above an outward-facing bud.
"""

TEXT = "Bread rises because yeast makes carbon dioxide.\n\nKnead the dough for ten minutes.\n"

HTML = """<!doctype html><html><head><title>Bicycle care</title>
<style>body { color: red }</style><script>var chain = "not text";</script></head>
<body><nav>Home | About</nav><h1>Bicycle care</h1><p>Keep the chain clean.</p>
<h2>Tyres</h2><p>Inflate tyres to the pressure printed on the sidewall.</p>
<ul><li>Check weekly</li><li>Replace when worn</li></ul>
<pre>pump --psi 60</pre></body></html>
"""


def pdf_bytes(*pages: str, title: str = "Telescope manual") -> bytes:
    """A valid PDF with one page per text, in Helvetica (enough for pypdf to extract)."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>",
    ]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = objects[1].format(" ".join(kids), len(kids))
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


def write_corpus(folder: Path) -> Path:
    """One file of each format in ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "garden.md").write_text(MARKDOWN)
    (folder / "bread.txt").write_text(TEXT)
    (folder / "bicycle.html").write_text(HTML)
    (folder / "telescope.pdf").write_bytes(
        pdf_bytes("Point the telescope at the moon first.", "Clean the lens with a soft brush.")
    )
    return folder
