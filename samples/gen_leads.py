#!/usr/bin/env python3
"""Generates samples/leads.csv: invented people and companies for `make demo`.

Run once and commit the CSV (the output is deterministic):
    python3 samples/gen_leads.py > samples/leads.csv

Every name and company is invented (surnames are built from syllables);
company domains are under the reserved .example and .test names (RFC 2606;
registrable under the public suffix list's default rule). The few free-mail addresses
use plus-addressing on a sample mailbox so they name nobody.
"""
import csv
import random
import sys

random.seed(20240607)

FIRST = ["Ada", "Bram", "Cleo", "Dario", "Elin", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kira", "Lior", "Mara", "Niko",
         "Odile", "Pavel", "Quinn", "Rosa", "Sami", "Tova", "Ugo", "Vera", "Wim", "Xena", "Yusuf", "Zora", "Anouk",
         "Bilal", "Carmen", "Dmitri", "Esme", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena", "Mateo",
         "Nadia", "Oskar", "Priya", "Rafael", "Sofia", "Tariq", "Uma", "Viktor", "Wanjiru", "Yara", "Zeno"]
SYL_A = ["Brack", "Quill", "Vel", "Thorn", "Mar", "Oak", "Fen", "Dun", "Ash", "Kel", "Lorr", "Pim", "Stav", "Wex",
         "Yarr", "Grev", "Holm", "Jask", "Nor", "Riv"]
SYL_B = ["enridge", "feather", "ormund", "wick", "ello", "hurst", "sby", "avane", "ley", "ovic", "quist", "ard",
         "ton", "mere", "ington", "aldi", "oux", "berg", "ski", "ath"]
CO_A = ["Bright", "North", "Blue", "Quiet", "Iron", "Silver", "Amber", "Copper", "Lumen", "Vireo", "Kestrel",
        "Tidal", "Granite", "Saffron", "Harbor", "Nimbus", "Orchid", "Pylon", "Quartz", "Rook"]
CO_B = ["loom", "wind", "field", "forge", "works", "path", "stack", "line", "craft", "leaf", "gate", "spring"]
CO_SUFFIX = ["Labs", "Robotics", "Analytics", "Systems", "Health", "Logistics", "Foods", "Energy", "Studio", "Bank"]
TITLES = ["CEO", "Founder & CEO", "CTO", "Chief Revenue Officer", "VP Sales", "VP of Engineering", "Head of Marketing",
          "Director of Engineering", "Director, Product Management", "Engineering Manager", "Senior Software Engineer",
          "Staff Engineer", "Software Engineer", "Account Executive", "Sales Development Representative",
          "Marketing Coordinator", "Office Manager", "Product Designer", "Data Analyst", "Intern", "Co-founder",
          "Senior Account Manager", "Head of People", "Chief Financial Officer", ""]
FREE = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "gmx.de"]
CITIES = {
    "US": ["San Francisco", "Austin", "New York", "Denver"],
    "GB": ["London", "Leeds", "Bristol"],
    "DE": ["Berlin", "Hamburg", "Munich"],
    "FR": ["Paris", "Lyon"],
    "AU": ["Sydney", "Melbourne"],
    "JP": ["Tokyo", "Osaka"],
    "IN": ["Bengaluru", "Pune"],
    "BR": ["São Paulo", "Recife"],
    "CA": ["Toronto", "Vancouver"],
}


def d(n):
    return "".join(random.choice("0123456789") for _ in range(n))


def phone(country):
    return {
        "US": lambda: random.choice([f"+1 (415) {random.randint(200, 989)}-{d(4)}", f"(212) {random.randint(200, 989)}-{d(4)}"]),
        "GB": lambda: f"+44 20 7946 0{d(3)}",
        "DE": lambda: f"+49 30 {random.randint(2, 9)}{d(7)}",
        "FR": lambda: f"+33 1 {random.randint(40, 59)} {d(2)} {d(2)} {d(2)}",
        "AU": lambda: f"+61 2 9{d(3)} {d(4)}",
        "JP": lambda: f"+81 3-{random.randint(3, 6)}{d(3)}-{d(4)}",
        "IN": lambda: f"+91 98{d(3)} {d(5)}",
        "BR": lambda: f"+55 11 9{random.randint(6, 9)}{d(3)}-{d(4)}",
        "CA": lambda: f"+1 416 {random.randint(200, 989)} {d(4)}",
    }[country]()


def surname():
    return random.choice(SYL_A) + random.choice(SYL_B)


def companies(n):
    seen, out = set(), []
    while len(out) < n:
        name = f"{random.choice(CO_A)}{random.choice(CO_B)} {random.choice(CO_SUFFIX)}"
        if name in seen:
            continue
        seen.add(name)
        slug = name.lower().replace(" ", "-")
        domain = f"{slug}.example" if len(out) % 3 else f"{slug}.test"
        country = random.choice(list(CITIES))
        out.append((name, domain, country))
    return out


def main():
    cos = companies(55)
    rows = []
    header = ["type", "first name", "last name", "full name", "email", "job title", "company", "company domain",
              "phone", "linkedin", "city", "country"]
    used = set()
    for i in range(230):
        co, domain, country = random.choice(cos)
        if random.random() < 0.25:
            country = random.choice(list(CITIES))
        first = random.choice(FIRST)
        last = surname()
        key = (first, last)
        if key in used:
            last = last + random.choice(["-" + surname(), " " + surname()])
        used.add((first, last))
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        r = random.random()
        if r < 0.12:
            email = f"puffle.sample+{local}@{random.choice(FREE)}"
        elif r < 0.18:
            email = ""  # LinkedIn-only people
        else:
            email = f"{local}@{domain}"
        linkedin = f"https://www.linkedin.com/in/{local.replace('.', '-')}-{d(4)}" if (not email or random.random() < 0.4) else ""
        full = ""
        if random.random() < 0.08:
            # Names the name_parse enrichment has to work for.
            full = random.choice([f"Dr. {first} {last}", f"{last}, {first}", f"{first} {last} Jr.", f"{first} van der {last}"])
            fn, ln = "", ""
        else:
            fn, ln = first, last
        ph = phone(country) if random.random() < 0.85 else ""
        if random.random() < 0.03:
            ph = random.choice(["12345", "+44 1", "call me"])  # numbers phone_normalize must fail
        city = random.choice(CITIES[country])
        rows.append(["person" if i % 7 else "", fn, ln, full, email, random.choice(TITLES), co, domain if random.random() < 0.7 else "",
                     ph, linkedin, city, country])
    for name, domain, country in cos:
        site = random.choice([domain, f"https://www.{domain}/", f"http://{domain}/about", f"www.{domain}"])
        rows.append(["company", "", "", "", "", "", name, site, phone(country) if random.random() < 0.5 else "", "",
                     random.choice(CITIES[country]), country])
    random.shuffle(rows)
    bad = [
        # Each breaks one rule of who a Lead is (shared/domain/src/identity.rs).
        ["person", "", "", "", "", "CEO", "", "", "", "", "Oslo", "NO"],
        ["person", "Bea", "Badmail", "", "bea.badmail-at-example.com", "VP Sales", "", "", "", "", "", ""],
        ["person", "Cal", "Doubleat", "", "cal@brightloom@brightloom.example", "CTO", "", "", "", "", "", ""],
        ["person", "Dee", "Spacey", "", "dee spacey@example.com", "Intern", "", "", "", "", "", ""],
        ["company", "", "", "", "", "", "Suffix Holdings", "co.uk", "+1 212 555 0100", "", "", "US"],
        ["company", "", "", "", "", "", "Broken Site Ltd", "not a website", "", "", "", "GB"],
        ["robot", "Rho", "Bott", "", "rho@quartzline.example", "", "", "", "", "", "", ""],
        ["person", "Lin", "Longlink", "", "", "", "", "", "", "https://www.linkedin.com/in/lin-" + "x" * 520, "", ""],
    ]
    for i, b in enumerate(bad):
        rows.insert(17 + i * 31, b)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)


if __name__ == "__main__":
    main()
