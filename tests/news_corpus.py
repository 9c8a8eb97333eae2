"""The news fixture corpus (``tests/fixtures/news``), written for these tests; the outlets,
people and events are made up.

Thirteen short articles (two sidecar files beside them) in every metadata form the
product reads:

- HTML with ``og:``/``article:`` meta tags (Havelland Kurier, Baltic Morning Post, in English),
  HTML with JSON-LD ``NewsArticle`` (Elbtal Nachrichten);
- Markdown with YAML front matter (Spreewald Zeitung; Uckermark Bote, whose
  ``.md.meta.yaml`` sidecar corrects the author and adds the update);
- plain text with "Stand: … Uhr" (Radio Nordost), a bare date line "17.01.2024, 21:12 Uhr"
  and "Von: …" (Lausitzer Echo), "Veröffentlicht am …" / "Aktualisiert am …", "Quelle: …",
  a bare date line whose outlet and URL come from a ``.meta.json`` sidecar (Ostsee Welle),
  and a reader's letter with no metadata at all.

Stories that several outlets tell (for filters now, near-duplicates later):

- ``BRIDGE``: the Havel bridge in Rathenow closed on 12 September 2023, told by three
  outlets; Radio Nordost gives the repair cost as 4.8 million euros, the other two 4.5
  (a disagreement on a number);
- ``POOL``: Cottbus decides on a new swimming pool on 17 January 2024, told by three outlets;
- ``FLOOD``: one Elbtal Nachrichten article and its update (same URL, later
  ``dateModified``): the level at Dresden changes from 6.20 m to 6.85 m.
"""

from __future__ import annotations

from pathlib import Path

NEWS_DIR = Path(__file__).resolve().parent / "fixtures" / "news"

BRIDGE = (
    "havelland-kurier-havelbruecke.html",
    "elbtal-nachrichten-havelbruecke.html",
    "radio-nordost-havelbruecke.txt",
)
POOL = ("spreewald-zeitung-hallenbad.md", "lausitzer-echo-hallenbad.txt", "radio-nordost-hallenbad.txt")
FLOOD = ("elbtal-nachrichten-elbpegel.html", "elbtal-nachrichten-elbpegel-update.html")  # original, update
SIDECARS = ("ostsee-welle-faehre.meta.json", "uckermark-bote-windpark.md.meta.yaml")

# source -> (title, outlet, url, author, published, updated), as the product must read them
EXPECTED = {
    "havelland-kurier-havelbruecke.html": (
        "Havelbrücke in Rathenow nach Rissfund gesperrt",
        "Havelland Kurier",
        "https://www.havelland-kurier.example/rathenow/havelbruecke-gesperrt",
        "Jana Krüger",
        "2023-09-12T09:30+02:00",
        "",
    ),
    "elbtal-nachrichten-havelbruecke.html": (
        "Rathenow: Brücke über die Havel bleibt monatelang dicht",
        "Elbtal Nachrichten",
        "https://www.elbtal-nachrichten.example/region/rathenow-havelbruecke-dicht",
        "Tobias Brandt",
        "2023-09-12T11:05+02:00",
        "",
    ),
    "radio-nordost-havelbruecke.txt": (
        "Rathenow sperrt Havelbrücke wegen Rissen in den Pfeilern",
        "Radio Nordost",
        "",
        "",
        "",
        "2023-09-12T16:40",
    ),
    "spreewald-zeitung-hallenbad.md": (
        "Cottbus bekommt ein neues Hallenbad",
        "Spreewald Zeitung",
        "https://www.spreewald-zeitung.example/cottbus/neues-hallenbad",
        "Miriam Schulze",
        "2024-01-17",
        "",
    ),
    "lausitzer-echo-hallenbad.txt": (
        "Neues Hallenbad für Cottbus beschlossen",
        "Lausitzer Echo",
        "",
        "Karl Neumann",
        "2024-01-17T21:12",
        "",
    ),
    "radio-nordost-hallenbad.txt": (
        "Cottbus: Stadtverordnete stimmen für neues Hallenbad",
        "Radio Nordost",
        "",
        "",
        "",
        "2024-01-18T07:15",
    ),
    "radio-nordost-sturm.txt": (
        "Sturmtief sorgt für umgestürzte Bäume in der Prignitz",
        "Radio Nordost",
        "",
        "",
        "2023-10-03T06:10",
        "2023-10-03T14:20",
    ),
    "elbtal-nachrichten-elbpegel.html": (
        "Hochwasser: Elbpegel in Dresden steigt auf 6,20 Meter",
        "Elbtal Nachrichten",
        "https://www.elbtal-nachrichten.example/dresden/elbpegel-hochwasser",
        "Sabine Wolf",
        "2024-01-05T08:00+01:00",
        "",
    ),
    "elbtal-nachrichten-elbpegel-update.html": (
        "Hochwasser: Elbpegel in Dresden steigt auf 6,85 Meter",
        "Elbtal Nachrichten",
        "https://www.elbtal-nachrichten.example/dresden/elbpegel-hochwasser",
        "Sabine Wolf",
        "2024-01-05T08:00+01:00",
        "2024-01-05T18:30+01:00",
    ),
    "ostsee-welle-faehre.txt": (
        "Neue Fährverbindung zwischen Rostock und Gedser startet",
        "Ostsee Welle",
        "https://www.ostseewelle.example/nachrichten/faehre-rostock-gedser",
        "",
        "2021-08-31T18:06",
        "",
    ),
    "baltic-morning-post-port.html": (
        "Rostock port reports record container traffic",
        "Baltic Morning Post",
        "https://www.balticmorningpost.example/business/rostock-port-record",
        "Helen Carter",
        "2023-03-02T14:00+00:00",
        "",
    ),
    "uckermark-bote-windpark.md": (
        "Windpark bei Prenzlau genehmigt",
        "Uckermark Bote",
        "",
        "Petra Lindner",
        "2023-06-14",
        "2023-06-15T09:00",
    ),
    "leserbrief-radweg.txt": ("Ein Radweg nach Falkensee wäre überfällig", "", "", "", "", ""),
}
