#!/usr/bin/env python3
"""(Re)generate Grounded's bundled sample corpus in ``samples/``.

The corpus is five short encyclopaedic documents, one per supported format:

    eiffel_tower.pdf         3-page PDF with a real text layer (fpdf2, core Helvetica font)
    great_barrier_reef.docx  Word document with headings, paragraphs and a bullet list (python-docx)
    photosynthesis.html      web page with <script>/<style> blocks and nav/footer boilerplate
    printing_press.md        Markdown with headings and lists
    apollo_11.txt            UTF-8 plain text containing a few non-ASCII characters

Output is byte-for-byte deterministic: the PDF creation date and the DOCX core
properties are pinned, and the DOCX zip entries get a fixed timestamp.
``samples/README.md`` is written by hand and is not touched by this script.

Usage:
    python scripts/make_samples.py             # write the corpus into samples/
    python scripts/make_samples.py --out DIR   # write it somewhere else
    python scripts/make_samples.py --verify    # write it, then read every file back
                                               # (needs pypdf) and print word counts
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "samples"

# Fixed timestamp so regenerated files are identical from run to run.
FIXED_DATE = dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
AUTHOR = "Grounded sample corpus"

# --------------------------------------------------------------------------
# eiffel_tower.pdf  (ASCII only: the core Helvetica font is latin-1)
# --------------------------------------------------------------------------

EIFFEL_PAGES: list[tuple[str, list[str]]] = [
    (
        "The Eiffel Tower: Construction",
        [
            "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, "
            "France. It was built between 1887 and 1889 to serve as the entrance arch and "
            "centrepiece of the 1889 Exposition Universelle, the world's fair that Paris hosted "
            "to mark the one hundredth anniversary of the French Revolution.",
            "The tower was designed and built by the engineering company of Gustave Eiffel. The "
            "first sketches came from two senior engineers at the firm, Maurice Koechlin and "
            "Emile Nouguier, and the architect Stephen Sauvestre refined its appearance, adding "
            "the decorative arches between the four legs. Eiffel did not draw the original "
            "design, but he bought the rights to it, promoted the project tirelessly and gave "
            "the tower his name.",
            "Work on the foundations began in January 1887. The iron pieces were prefabricated "
            "in Eiffel's workshops at Levallois-Perret, just outside Paris, and a team of a few "
            "hundred workers assembled them on site like a giant construction kit. Building the "
            "tower took a little over two years: it was completed in 1889, at the end of March, "
            "in time for the opening of the exposition that spring.",
            "On completion the tower stood about 312 metres tall including its flagpole, which "
            "made it the tallest man-made structure in the world. It kept that title for about "
            "four decades, until the Chrysler Building in New York overtook it in 1930. "
            "Antennas added to the summit over the years have raised its height, and today the "
            "Eiffel Tower is 330 metres tall.",
            "Not everyone welcomed the project. While it was being built, a group of well-known "
            "artists and writers published a letter of protest calling the tower useless and "
            "monstrous. The city had granted a permit for only 20 years, so the tower could "
            "have been taken down in 1909. It survived largely because it proved valuable as a "
            "platform for radio and wireless telegraphy antennas.",
        ],
    ),
    (
        "The Eiffel Tower: Materials and Maintenance",
        [
            "The tower is made of puddled iron, a kind of wrought iron. Its metal frame "
            "consists of about 18,000 individual iron parts (18,038 according to the company "
            "that runs the monument), held together by roughly 2.5 million rivets. The "
            "ironwork alone weighs about 7,300 tonnes, and the complete structure, including "
            "lifts, shops and other fittings, weighs roughly 10,000 tonnes.",
            "Every part was specified in advance. Eiffel's design office produced thousands of "
            "detailed drawings, and the rivet holes were drilled in the workshop so that the "
            "pieces fitted together precisely when they reached the building site. Because the "
            "lattice is so open, the tower is remarkably light for its size and offers little "
            "resistance to the wind.",
            "Iron rusts when it is exposed to air and rain, so paint is the tower's main "
            "protection against corrosion. The Eiffel Tower is repainted about every 7 years. "
            "Each campaign uses around 60 tonnes of paint, which teams of painters apply by "
            "hand with brushes, working on ropes and platforms high above the ground. The "
            "tower has been repainted about twenty times in its history.",
            "The colour, a bronze-like shade often called Eiffel Tower brown, is applied in "
            "three tones that are darker at the bottom and lighter at the top, so that the "
            "tower looks evenly coloured against the sky. Earlier coats included a reddish "
            "brown and a yellow ochre.",
            "Iron expands when it warms up. On a hot summer day the top of the tower can lean "
            "away from the sun by as much as 15 to 18 centimetres, and in strong winds it "
            "sways by only a few centimetres. Engineers inspect the structure continuously and replace "
            "worn parts as part of the regular maintenance programme.",
        ],
    ),
    (
        "The Eiffel Tower: Visiting",
        [
            "Around 7 million visitors per year come to the Eiffel Tower, making it one of the "
            "most visited paid monuments in the world. A large share of them come from outside "
            "France, and hundreds of millions of people have visited it since it opened.",
            "Visitors can go up to three levels. The first level, about 57 metres above the "
            "ground, has a glass floor that lets people look straight down at the square "
            "below. The second level, about 115 metres up, offers what many consider the best "
            "views over Paris and is home to the Jules Verne restaurant. The top level, at "
            "about 276 metres, is the highest observation deck open to the public in the "
            "European Union. It also contains a reconstruction of Gustave Eiffel's small "
            "private office.",
            "Lifts run inside the pillars from the ground to the second level, where visitors "
            "change to separate lifts that climb to the top. Energetic visitors can instead "
            "take the stairs as far as the second level, a climb of 674 steps; the stairs "
            "above that are not open to the public.",
            "After dark the tower is lit up every evening, and for five minutes at the start "
            "of each hour thousands of flashing bulbs make it sparkle. Booking tickets online "
            "in advance is the best way to avoid long queues, especially in summer.",
            "The tower stands in the 7th arrondissement, on the left bank of the Seine, "
            "facing the Trocadero gardens across the river. The nearest metro stations are "
            "Bir-Hakeim and Trocadero.",
        ],
    ),
]


def make_pdf(path: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title("The Eiffel Tower")
    pdf.set_author(AUTHOR)
    pdf.set_subject("Construction, materials and visiting information")
    pdf.set_creator("scripts/make_samples.py")
    pdf.set_margins(left=20, top=20, right=20)
    pdf.set_auto_page_break(auto=True, margin=20)

    n_pages = len(EIFFEL_PAGES)
    for number, (title, paragraphs) in enumerate(EIFFEL_PAGES, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 9, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            paragraph.encode("ascii")  # the PDF text must stay ASCII
            pdf.multi_cell(0, 6, paragraph, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(3)
        if pdf.page != number:
            raise RuntimeError(f"PDF content for page {number} overflowed onto another page")
        # Footer with the page number (written last so the body text comes first).
        pdf.set_auto_page_break(auto=False)
        pdf.set_y(-15)
        pdf.set_font("Helvetica", style="I", size=9)
        pdf.cell(0, 6, f"Page {number} of {n_pages}", align="C")
        pdf.set_auto_page_break(auto=True, margin=20)

    pdf.output(str(path))


# --------------------------------------------------------------------------
# great_barrier_reef.docx
# --------------------------------------------------------------------------

# ("h0" = document title, "h1"/"h2" = headings, "p" = paragraph, "li" = bullet item)
REEF_BLOCKS: list[tuple[str, str]] = [
    ("h0", "The Great Barrier Reef"),
    (
        "p",
        "The Great Barrier Reef is the largest coral reef system in the world. It lies in the "
        "Coral Sea off the coast of Queensland, in north-eastern Australia, and is made up of "
        "more than 2,900 individual reefs and about 900 islands. The reef stretches for over "
        "2,300 kilometres and covers an area of roughly 344,000 square kilometres, which "
        "makes it the largest structure on Earth built by living organisms. It is large "
        "enough to be seen from space.",
    ),
    ("h1", "How the reef formed"),
    (
        "p",
        "The reef is built by billions of tiny animals called coral polyps. Each polyp "
        "produces a hard skeleton of calcium carbonate, and over thousands of years these "
        "skeletons accumulate into the massive limestone structures that make up a reef. "
        "The living reef we see today is relatively young: scientists believe it began "
        "growing on top of older reef platforms around 20,000 years ago, and it took its "
        "present shape after sea levels rose at the end of the last ice age.",
    ),
    (
        "p",
        "Reef-building corals live in partnership with microscopic algae called "
        "zooxanthellae, which live inside the coral tissue. The algae use sunlight to make "
        "food through photosynthesis and share it with the coral, and they also give many "
        "corals their colour. This partnership is why reef-building corals grow only in "
        "clear, shallow, sunlit water.",
    ),
    ("h1", "Wildlife"),
    (
        "p",
        "The Great Barrier Reef is one of the richest ecosystems on the planet. Its waters "
        "and islands are home to, among many others:",
    ),
    ("li", "more than 1,500 species of fish;"),
    ("li", "hundreds of species of hard and soft coral;"),
    ("li", "six of the world's seven species of marine turtle;"),
    ("li", "more than 30 species of whales and dolphins, and the dugong, or sea cow;"),
    ("li", "over 200 species of birds that feed or nest on the reef islands."),
    ("h1", "Protection and management"),
    (
        "p",
        "Most of the reef lies within the Great Barrier Reef Marine Park, which was "
        "established in 1975 and is managed by the Great Barrier Reef Marine Park Authority. "
        "The park is divided into zones: some areas are open to fishing and boating, while "
        "others are strictly protected. In 1981 the Great Barrier Reef was inscribed on the "
        "UNESCO World Heritage List for its outstanding natural value.",
    ),
    (
        "p",
        "Aboriginal and Torres Strait Islander peoples have lived alongside the reef for "
        "tens of thousands of years, and many Traditional Owner groups continue to care for "
        "their sea country today. The reef also entered European records in 1770, when "
        "James Cook's ship, HMS Endeavour, ran aground on it and had to be repaired on the "
        "mainland.",
    ),
    ("h1", "Threats"),
    (
        "p",
        "The greatest threat to the reef is climate change. When sea temperatures stay "
        "unusually high for too long, corals expel the algae living in their tissues and "
        "turn white, a process known as coral bleaching. Bleached corals are not dead, and "
        "they can recover if conditions improve quickly, but prolonged heat stress kills "
        "them. The reef has suffered several mass bleaching events since 1998, including "
        "back-to-back events in 2016 and 2017.",
    ),
    (
        "p",
        "Other pressures include outbreaks of the coral-eating crown-of-thorns starfish, "
        "sediment and fertiliser washed into the sea from farmland, and damage from "
        "tropical cyclones. Programmes to control starfish, improve water quality and "
        "study heat-tolerant corals all aim to help the reef recover between disturbances.",
    ),
    ("h1", "Tourism"),
    (
        "p",
        "The reef is one of Australia's best-known natural attractions. Around two million "
        "tourists visit each year to snorkel, dive, sail or fly over it, mostly from "
        "coastal towns such as Cairns, Port Douglas and the Whitsunday Islands. Reef "
        "tourism supports tens of thousands of jobs and contributes several billion "
        "Australian dollars to the economy every year.",
    ),
]


def _normalise_zip(path: Path) -> None:
    """Rewrite a zip file with fixed entry timestamps so its bytes are reproducible."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())


def make_docx(path: Path) -> None:
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.title = "The Great Barrier Reef"
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.subject = "Geography, wildlife and conservation of the Great Barrier Reef"
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    for kind, text in REEF_BLOCKS:
        if kind.startswith("h"):
            doc.add_heading(text, level=int(kind[1:]))
        elif kind == "li":
            doc.add_paragraph(text, style="List Bullet")
        else:
            doc.add_paragraph(text)
    doc.save(str(path))
    _normalise_zip(path)


# --------------------------------------------------------------------------
# photosynthesis.html
# --------------------------------------------------------------------------

# Marker strings that live only inside <script>/<style>/boilerplate; a loader that
# strips scripts and styles correctly must not emit the first two groups.
HTML_SCRIPT_MARKERS = ("trackPageView", "SAMPLE_ANALYTICS_ID")
HTML_STYLE_MARKERS = ("font-family", ".site-nav")

PHOTOSYNTHESIS_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="description" content="An introduction to photosynthesis: how plants turn light, water and carbon dioxide into sugar and oxygen.">
  <title>Photosynthesis: How Plants Make Food from Light | Open Science Notes</title>
  <style>
    body { font-family: Georgia, "Times New Roman", serif; margin: 0; color: #222; line-height: 1.6; }
    .site-nav { background: #1b5e20; padding: 0.75rem 1.5rem; }
    .site-nav a { color: #fff; margin-right: 1.25rem; text-decoration: none; }
    main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
    .equation { font-family: "Courier New", monospace; background: #f1f8e9; padding: 0.5rem 1rem; }
    footer { border-top: 1px solid #ccc; font-size: 0.85rem; padding: 1rem 1.5rem; color: #666; }
  </style>
  <script>
    window.dataLayer = window.dataLayer || [];
    function trackPageView(page) {
      window.dataLayer.push({ event: "page_view", page: page, id: "SAMPLE_ANALYTICS_ID" });
    }
    trackPageView("/biology/photosynthesis");
  </script>
</head>
<body>
  <header>
    <nav class="site-nav" aria-label="Main">
      <a href="/">Home</a>
      <a href="/biology/">Biology</a>
      <a href="/chemistry/">Chemistry</a>
      <a href="/physics/">Physics</a>
      <a href="/about/">About us</a>
    </nav>
  </header>

  <main>
    <article>
      <h1>Photosynthesis: How Plants Make Food from Light</h1>

      <p>Photosynthesis is the process by which plants, algae and some bacteria capture the
      energy of sunlight and store it as chemical energy in sugar. Using light, these
      organisms combine carbon dioxide from the air with water to make glucose, and they
      release oxygen as a by-product. Almost all life on Earth depends on it, directly or
      indirectly: photosynthesis supplies the food at the base of nearly every food chain
      and most of the oxygen in the atmosphere.</p>

      <h2>The overall equation</h2>
      <p>The overall reaction of photosynthesis can be summarised as:</p>
      <p class="equation">6 CO<sub>2</sub> + 6 H<sub>2</sub>O + light energy &rarr;
      C<sub>6</sub>H<sub>12</sub>O<sub>6</sub> + 6 O<sub>2</sub></p>
      <p>In words: six molecules of carbon dioxide and six molecules of water, powered by
      light, produce one molecule of glucose and six molecules of oxygen. Carbon dioxide
      enters a leaf through tiny pores called stomata, and water is drawn up from the roots
      through the stem.</p>

      <h2>Where it happens: chloroplasts and chlorophyll</h2>
      <p>In plants, photosynthesis takes place inside chloroplasts, small green structures
      found mostly in the cells of leaves. Chloroplasts contain chlorophyll, the pigment
      that absorbs light. Chlorophyll absorbs mainly blue and red light and reflects green
      light, which is why leaves look green to us.</p>

      <h2>The two stages</h2>
      <p>Photosynthesis happens in two linked stages:</p>
      <ol>
        <li><strong>The light-dependent reactions</strong> take place in the thylakoid
        membranes inside the chloroplast. Light energy absorbed by chlorophyll is used to
        split water molecules, which releases oxygen, and to make two energy-carrying
        molecules, ATP and NADPH.</li>
        <li><strong>The Calvin cycle</strong> (the light-independent reactions) takes place
        in the stroma, the fluid that surrounds the thylakoids. Here the enzyme RuBisCO
        fixes carbon dioxide from the air, and the energy stored in ATP and NADPH is used
        to build it into sugars such as glucose.</li>
      </ol>
      <p>RuBisCO is thought to be the most abundant protein on Earth, because every
      photosynthesising plant needs large amounts of it.</p>

      <h2>Adaptations to heat and drought</h2>
      <p>Most plants use the standard pathway described above and are called C3 plants.
      Some plants that grow in hot or dry places have extra steps that help them save
      water and use carbon dioxide more efficiently. C4 plants, such as maize and
      sugarcane, first capture carbon dioxide in one type of cell and then pass it to
      another. CAM plants, such as cacti and pineapples, open their stomata only at night
      and store carbon dioxide until the sun comes up.</p>

      <h2>A short history of the discovery</h2>
      <p>In the 1770s the English chemist Joseph Priestley found that a sprig of mint could
      &ldquo;restore&rdquo; air in which a candle had burned out. A few years later, in
      1779, the Dutch physician Jan Ingenhousz showed that plants only do this in light,
      and only with their green parts. In the 20th century the American chemist Melvin
      Calvin and his colleagues traced the path of carbon through the cycle that now bears
      his name, work for which Calvin received the Nobel Prize in Chemistry in 1961.</p>

      <h2>Why it matters</h2>
      <p>Photosynthesis first evolved in bacteria billions of years ago, and the oxygen
      released by early cyanobacteria gradually transformed Earth&rsquo;s atmosphere.
      Today it still removes large amounts of carbon dioxide from the air, and coal, oil
      and natural gas are the remains of organisms that captured sunlight through
      photosynthesis millions of years ago.</p>
    </article>
  </main>

  <footer>
    <p>&copy; 2024 Open Science Notes &middot; <a href="/privacy/">Privacy</a> &middot;
    <a href="/contact/">Contact</a></p>
    <p>This page is part of a sample corpus. Content is provided for educational purposes.</p>
  </footer>

  <script>
    document.addEventListener("DOMContentLoaded", function () {
      trackPageView(window.location.pathname);
    });
  </script>
</body>
</html>
"""


def make_html(path: Path) -> None:
    path.write_text(PHOTOSYNTHESIS_HTML, encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------
# printing_press.md
# --------------------------------------------------------------------------

PRINTING_PRESS_MD = """\
# The Printing Press

The printing press with movable metal type, developed by **Johannes Gutenberg** in the
German city of Mainz around 1440, is often counted among the most important inventions
of the last thousand years. It made books far cheaper and faster to produce, and it
helped spread ideas across Europe at a speed that had never been possible before.

## Before Gutenberg

Printing itself was not new. In China, texts were printed from carved wooden blocks
for centuries; the *Diamond Sutra* of 868 is the oldest surviving printed book that
carries a date. Around 1040 the Chinese craftsman Bi Sheng made movable type from
baked clay, and in Korea printers later cast type in metal. The *Jikji*, a Korean
Buddhist text printed in 1377, is the oldest surviving book printed with movable metal
type.

In medieval Europe, however, most books were still copied by hand, usually by scribes
in monasteries. A single book could take months to copy, so books were rare and
expensive.

## Gutenberg's invention

Gutenberg was a goldsmith, and his breakthrough was to combine several technologies
into one practical system:

- a **hand mould** that let workers cast large numbers of identical letters quickly;
- a **type metal** alloy of lead, tin and antimony that melted easily and cooled hard;
- an **oil-based ink** that stuck to metal type better than the water-based inks used
  for woodblocks;
- a wooden **screw press**, adapted from the presses used to make wine and olive oil,
  that pressed the paper evenly onto the inked type.

Because each letter was a separate piece of metal, a page could be set, printed, taken
apart and the type reused for the next page.

## The Gutenberg Bible

Gutenberg's most famous work is the Latin Bible printed in Mainz and finished around
1455. It is often called the 42-line Bible because most of its pages have 42 lines of
text in each column. About 180 copies were printed, some on paper and some on vellum,
and fewer than 50 survive today, many of them incomplete. Gutenberg himself did not
grow rich: after a lawsuit, his financial backer Johann Fust took over much of the
business and carried on printing with Peter Schoeffer.

## How printing spread

Printing spread quickly from Mainz. Some key steps:

1. By 1500, printing presses were at work in more than 200 towns and cities across
   Europe, and they had produced millions of books. Books printed before 1501 are known
   as *incunabula*.
2. Venice became one of the great printing centres. There the printer Aldus Manutius
   introduced italic type and small, affordable books that readers could carry.
3. In 1476 William Caxton set up the first printing press in England, at Westminster.
   Among the first books he printed was Chaucer's *Canterbury Tales*.

## Impact

The printing press changed European society in many ways:

- **Cheaper books and rising literacy.** As the price of books fell, more people
  learned to read.
- **The Reformation.** Martin Luther's writings, starting with his Ninety-five Theses
  of 1517, were printed and reprinted in huge numbers, spreading his ideas far faster
  than the Church could respond.
- **Science.** Scholars could share exact copies of texts, tables and diagrams, which
  helped make the Scientific Revolution possible.
- **Standard languages.** Printers settled on common spellings and forms, which helped
  standardise languages such as English and German.

## Later developments

Gutenberg's basic design was used with few changes for about 350 years. In 1814 The
Times of London began printing on a steam-powered press built by the German inventor
Friedrich Koenig, and in the 1840s the American Richard March Hoe introduced the rotary
press, which printed from type fixed around a rotating cylinder. These machines made
cheap daily newspapers possible.
"""


def make_markdown(path: Path) -> None:
    path.write_text(PRINTING_PRESS_MD, encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------
# apollo_11.txt  (UTF-8, deliberately contains non-ASCII punctuation)
# --------------------------------------------------------------------------

APOLLO_11_TXT = """\
APOLLO 11: THE FIRST CREWED MOON LANDING

Apollo 11 was the American spaceflight that first landed people on the Moon. It was \
flown by NASA in July 1969 and fulfilled the goal, set by President John F. Kennedy in \
1961, of landing a man on the Moon and returning him safely to Earth before the end of \
the decade.

THE CREW

All three crew members had flown in space before, on Gemini missions. Neil Armstrong was \
the commander. Edwin “Buzz” Aldrin was the lunar module pilot, and he followed \
Armstrong onto the surface. Michael Collins was the command module pilot; he remained \
in orbit around the Moon while his two crewmates landed, and flew the command module \
on his own for more than a day.

THE SPACECRAFT

Apollo 11 launched on a Saturn V rocket, the most powerful rocket then built. The \
spacecraft had two main parts: the command module, named Columbia, which carried the \
crew to the Moon and back, and the lunar module, named Eagle, which took two \
astronauts down to the surface and then lifted them back into lunar orbit.

THE MISSION

Apollo 11 lifted off from Launch Complex 39A at the Kennedy Space Center in Florida on \
16 July 1969. Three days later the spacecraft entered orbit around the Moon.

On 20 July 1969 Armstrong and Aldrin separated Eagle from Columbia and began their \
descent. The final approach was tense — the guidance computer raised a series of \
program alarms, and Armstrong had to take manual control to steer past a field of \
boulders before setting down with little fuel to spare. Eagle landed in the Sea of \
Tranquility (Mare Tranquillitatis) at 20:17 UTC, and Armstrong radioed: “Houston, \
Tranquility Base here. The Eagle has landed.”

About six and a half hours later Armstrong climbed down the ladder and became the \
first person to walk on the Moon, at 02:56 UTC on 21 July (still the evening of 20 \
July in the United States). Neil Armstrong’s first words on the surface were: “That’s \
one small step for man, one giant leap for mankind.” Aldrin joined him about twenty \
minutes later.

ON THE SURFACE

The two astronauts spent about two and a half hours walking outside the lunar module. \
They planted a United States flag, collected about 21.5 kilograms (47.5 pounds) of \
lunar rock and soil, took photographs, and set up scientific experiments, including a \
seismometer to detect moonquakes and a laser-ranging retroreflector that scientists on \
Earth still use to measure the distance to the Moon. A plaque fixed to one of Eagle’s \
legs reads: “Here men from the planet Earth first set foot upon the Moon, July 1969, \
A.D. We came in peace for all mankind.” In total, Eagle stayed on the Moon for about \
21 and a half hours.

THE RETURN

Eagle’s upper stage lifted off from the Moon and docked with Columbia, and the three \
astronauts headed home. Columbia splashed down in the Pacific Ocean on 24 July 1969 \
and the crew was recovered by the aircraft carrier USS Hornet. As a precaution against \
unknown lunar germs, the astronauts spent about three weeks in quarantine. The whole \
mission lasted a little over eight days.

LEGACY

Hundreds of millions of people around the world watched the first steps on live \
television — one of the largest audiences in history at that time. Apollo 11 was \
followed by five more successful landings, and by the end of the Apollo programme in \
1972 twelve astronauts had walked on the Moon. Columbia is now displayed at the \
Smithsonian’s National Air and Space Museum in Washington, D.C.
"""


def make_text(path: Path) -> None:
    path.write_text(APOLLO_11_TXT, encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------

GENERATORS = {
    "eiffel_tower.pdf": make_pdf,
    "great_barrier_reef.docx": make_docx,
    "photosynthesis.html": make_html,
    "printing_press.md": make_markdown,
    "apollo_11.txt": make_text,
}


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in GENERATORS.items():
        path = out_dir / name
        make(path)
        written.append(path)
    return written


# --------------------------------------------------------------------------
# verification (read every file back the way a loader would)
# --------------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """Collect visible text, skipping <script> and <style> contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _words(text: str) -> int:
    return len(text.split())


def _expect(ok: bool, message: str, failures: list[str]) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {message}")
    if not ok:
        failures.append(message)


def verify(out_dir: Path) -> bool:
    from docx import Document
    from pypdf import PdfReader

    failures: list[str] = []
    total_bytes = 0

    # PDF: every page must extract to its own distinct content.
    pdf_path = out_dir / "eiffel_tower.pdf"
    reader = PdfReader(str(pdf_path))
    print(f"{pdf_path.name}: {len(reader.pages)} pages")
    _expect(len(reader.pages) == len(EIFFEL_PAGES), "PDF has 3 pages", failures)
    page_expectations = [
        ["completed in 1889", "engineering company of Gustave Eiffel", "Exposition Universelle", "330 metres"],
        ["18,000 individual iron parts", "2.5 million rivets", "every 7 years", "60 tonnes of paint"],
        ["7 million visitors per year", "three levels", "276 metres"],
    ]
    pdf_words = 0
    for i, (page, expected) in enumerate(zip(reader.pages, page_expectations, strict=False), start=1):
        text = _norm(page.extract_text())
        pdf_words += _words(text)
        source = _norm(" ".join([EIFFEL_PAGES[i - 1][0], *EIFFEL_PAGES[i - 1][1]]))
        _expect(source in text, f"page {i}: full text layer matches source ({_words(text)} words)", failures)
        for phrase in expected:
            _expect(phrase in text, f"page {i}: contains {phrase!r}", failures)
        others = [p for j, ps in enumerate(page_expectations, start=1) if j != i for p in ps]
        _expect(not any(p in text for p in others), f"page {i}: no other page's key facts", failures)
    counts = {pdf_path.name: pdf_words}

    # DOCX: headings and paragraphs read back in order.
    docx_path = out_dir / "great_barrier_reef.docx"
    doc = Document(str(docx_path))
    paras = [(p.style.name if p.style else "", p.text) for p in doc.paragraphs if p.text.strip()]
    headings = [t for s, t in paras if s.startswith("Heading") or s == "Title"]
    print(f"{docx_path.name}: {len(paras)} paragraphs, {len(headings)} headings")
    _expect([t for _, t in paras] == [t for _, t in REEF_BLOCKS], "DOCX text reads back in order", failures)
    _expect(len(headings) >= 5, f"DOCX has headings: {headings}", failures)
    counts[docx_path.name] = _words(" ".join(t for _, t in paras))

    # HTML: visible text excludes script/style.
    html_path = out_dir / "photosynthesis.html"
    parser = _VisibleText()
    parser.feed(html_path.read_text(encoding="utf-8"))
    visible = _norm(" ".join(parser.parts))
    raw = html_path.read_text(encoding="utf-8")
    print(f"{html_path.name}:")
    for marker in HTML_SCRIPT_MARKERS + HTML_STYLE_MARKERS:
        _expect(marker in raw and marker not in visible, f"{marker!r} only inside script/style", failures)
    _expect("Calvin cycle" in visible and "stroma" in visible, "visible text has article content", failures)
    counts[html_path.name] = _words(visible)

    # Markdown / text: UTF-8 round trip.
    for name in ("printing_press.md", "apollo_11.txt"):
        text = (out_dir / name).read_text(encoding="utf-8")
        print(f"{name}:")
        counts[name] = _words(text)
        if name.endswith(".txt"):
            _expect(
                "Neil Armstrong\u2019s" in text and "\u2014" in text, "contains non-ASCII (\u2019, \u2014)", failures
            )
        else:
            _expect(text.count("\n#") >= 5 and "\n- " in text and "\n1. " in text, "has headings and lists", failures)

    print("\nfile                       bytes   words")
    for name in GENERATORS:
        size = (out_dir / name).stat().st_size
        total_bytes += size
        n = counts[name]
        print(f"{name:24} {size:8} {n:7}")
        _expect(size < 60_000, f"{name} under 60 KB", failures)
        _expect(300 <= n <= 1500, f"{name} has 300-1500 words", failures)
    print(f"{'total':24} {total_bytes:8} {sum(counts.values()):7}")
    _expect(total_bytes < 200_000, "corpus under 200 KB", failures)

    if failures:
        print(f"\n{len(failures)} check(s) failed")
        return False
    print("\nall checks passed")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: samples/)")
    ap.add_argument("--verify", action="store_true", help="read the files back and print word counts")
    args = ap.parse_args(argv)

    for path in generate(args.out):
        print(f"wrote {path}")
    if args.verify:
        print()
        return 0 if verify(args.out) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
