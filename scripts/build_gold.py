"""Dev tool: the gold set (eval/gold.jsonl) as code. Usage: python scripts/build_gold.py eval/gold.jsonl"""

import json

F0 = "000_adb08db0fa087bf0.txt"
F1 = "001_8dbe49e802ff1033.txt"
F2 = "002_982e29be4fc97f92.txt"
F3 = "003_314c77a133a9acd5.txt"
F4 = "004_7f32bc9d79f56e77.txt"


def A(q, lang, sources, answers, evidence, history=None):
    return dict(
        question=q,
        history=history or [],
        lang=lang,
        answerable=True,
        sources=sources,
        answers=answers,
        evidence=evidence,
    )


def U(q, lang, history=None):
    return dict(question=q, history=history or [], lang=lang, answerable=False, sources=[], answers=[], evidence="")


items = [
    # ---------------- German, single-turn, answerable ----------------
    A(
        "Welche nordkoreanischen Kurzstreckenraketen könnten für Moskau besonders attraktiv sein?",
        "de",
        [F0, F1, F2, F4],
        ["KN-23"],
        "Interessant für Russland wären vor allem Kurzstrecken-Raketen, etwa vom Typ KN-23, die dem russischen "
        "Iskander-Raketensystem sehr ähnlich sind.",
    ),
    A(
        "Mit welchem russischen Raketensystem ist die KN-23 vergleichbar?",
        "de",
        [F0, F2, F4],
        ["Iskander-Raketensystem", "Iskander"],
        "Diese Waffen ähnelten dem russischen Iskander-Raketensystem, so Bremer gegenüber ZDFheute.",
    ),
    A(
        "Welches Kaliber hätte die alte Artilleriemunition, die Nordkorea an Russland liefern könnte?",
        "de",
        [F0, F2, F4],
        ["152 bis 122", "152-122 Millimetergeschosse"],
        "Geschosse für die Artillerie (152 bis 122 mm) und Panzer (100 bis 150 mm) – aus Sowjetunion-Zeiten",
    ),
    A(
        "Wie lang war ungefähr die Bahnstrecke, die Kim für sein diplomatisches Comeback zurücklegen musste?",
        "de",
        [F0],
        ["Rund 700 Eisenbahnkilometer", "700 Eisenbahnkilometer"],
        "Rund 700 Eisenbahnkilometer trennten Kim Jong-un von seinem Comeback auf der diplomatischen Weltbühne.",
    ),
    A(
        "Wer hat von russischer Seite bestätigt, dass Kim im Land angekommen ist?",
        "de",
        [F1, F2],
        ["Dmitri Peskow"],
        "Dann hieß es von Kremlsprecher Dmitri Peskow gegenüber Interfax: „Ich bestätige das.“",
    ),
    A(
        "Gegen welche internationalen Beschlüsse würden nordkoreanische Waffenlieferungen an Moskau laut Washington "
        "verstoßen?",
        "de",
        [F1, F2],
        ["Resolutionen des UN-Sicherheitsrats"],
        "Jedes Übertragen von Waffen von Nordkorea an Russland wäre eine Verletzung mehrerer Resolutionen des "
        "UN-Sicherheitsrats",
    ),
    A(
        "Welche Konsequenzen haben die Vereinigten Staaten beiden Ländern angedroht?",
        "de",
        [F1, F2],
        ["neue Sanktionen"],
        "Die USA würden nicht zögern, gegen beide Länder neue Sanktionen zu verhängen.",
    ),
    A(
        "Wie deutet das US-Außenministerium die Tatsache, dass Putin überhaupt mit Kim verhandelt?",
        "de",
        [F1],
        ["Zeichen der Schwäche Putins"],
        "Es sei ein Zeichen der Schwäche Putins, dass er überhaupt mit Kim verhandeln müsse, hieß es vom "
        "US-Außenministerium.",
    ),
    A(
        "Wie viele Artilleriegranaten sowjetischer Bauart hat Nordkorea nach Schätzungen auf Lager?",
        "de",
        [F1, F3],
        ["Dutzende Millionen", "zig Millionen"],
        "Nordkorea verfügt laut Beobachtern möglicherweise über Dutzende Millionen Artilleriegeschosse und Raketen "
        "sowjetischer Bauart.",
    ),
    A(
        "Welche Art von Satelliten könnte Pjöngjang mithilfe russischer Technik entwickeln?",
        "de",
        [F1],
        ["militärische Aufklärungssatelliten"],
        "Im Gegenzug könnte Nordkorea dringend benötigte Energie- und Nahrungsmittelhilfe, sowie fortschrittliche "
        "Waffentechnologien erhalten, darunter solche für Interkontinentalraketen, nuklearfähige U-Boote und "
        "militärische Aufklärungssatelliten.",
    ),
    A(
        "Wann hat Kims Zug die Grenze nach Russland überquert?",
        "de",
        [F2],
        ["Dienstagmorgen", "12. September"],
        "Am Dienstagmorgen (12. September) rollte der gepanzerte, grüne Zug des nordkoreanischen Machthabers über die "
        "russische Grenze.",
    ),
    A(
        "Welche Farbe hat Kims gepanzerter Zug?",
        "de",
        [F2],
        ["grüne"],
        "Am Dienstagmorgen (12. September) rollte der gepanzerte, grüne Zug des nordkoreanischen Machthabers über die "
        "russische Grenze.",
    ),
    A(
        "An welchem Tag wurde das Treffen von Kim und Putin in Wladiwostok erwartet?",
        "de",
        [F0, F2],
        ["Mittwoch", "13. September"],
        "Nach den gescheiterten Gipfeln mit Ex-US-Präsident Donald Trump trifft er vermutlich im fernöstlichen "
        "Wladiwostok am Mittwoch den russischen Präsidenten Wladimir Putin",
    ),
    A(
        "Im Rahmen welcher Veranstaltung in Wladiwostok könnten sich die beiden Staatschefs sehen?",
        "de",
        [F2, F3],
        ["Östliches Wirtschaftsforum", "internationales Forum"],
        "Bereits vor der Ankunft Kims wurde spekuliert, dass sich die beiden Machthaber am Mittwoch (13. September) "
        "zum Ende des „Östliches Wirtschaftsforums“ in Wladiwostok treffen könnten.",
    ),
    A(
        "Was steht beim Besuch außer den Gesprächen der Delegationen noch auf dem Programm?",
        "de",
        [F2],
        ["Einzelgespräche", "offizielles Abendessen"],
        "Geplant seien Treffen der beiden Delegationen, Einzelgespräche und ein offizielles Abendessen.",
    ),
    A(
        "Wann war Kim das letzte Mal in Russland?",
        "de",
        [F2],
        ["2019"],
        "Für Kim ist es der erste Besuch in Russland seit 2019.",
    ),
    A(
        "Welches gemeinsame Interesse verbindet Moskau und Pjöngjang?",
        "de",
        [F2, F4],
        ["Den Einfluss der USA zu verringern", "gemeinsamen Front gegen die USA"],
        "Russland und Nordkorea eint vor allem ein Ziel: Den Einfluss der USA zu verringern.",
    ),
    A(
        "Was schließt ein kremlnaher Analyst daraus, dass Kim persönlich anreist?",
        "de",
        [F2],
        ["bereits geeinigt"],
        "Und weiter: „Wenn Kim kommt, bedeutet das, dass sie sich bereits geeinigt haben“.",
    ),
    A(
        "Welche strategische Rolle könnte Russland für Kim mit Blick auf Peking spielen?",
        "de",
        [F2],
        ["Gegengewicht zu China"],
        "Russland dürfte als „Gegengewicht zu China dienen“, so Atsuhito Isozaki, Professor für Nordkoreastudien, "
        "gegenüber der Washington Post.",
    ),
    A(
        "Weshalb könnte Pjöngjang zusätzliche Arbeitskräfte nach Russland entsenden?",
        "de",
        [F2],
        ["Devisen zu verdienen"],
        "Nordkorea könnte weitere Arbeiter nach Russland schicken, um benötigte Devisen zu verdienen.",
    ),
    A(
        "Wie lange kann Russland nach Einschätzung des Kiewer Geheimdienstes noch durchhalten?",
        "de",
        [F2],
        ["maximal ein Jahr"],
        "Indes geht der ukrainische Geheimdienst davon aus, dass Russland nur noch maximal ein Jahr durchhält.",
    ),
    A(
        "Mit welchem Verkehrsmittel ist Kim nach Russland gereist?",
        "de",
        [F0, F2, F3, F4],
        ["gepanzerten Zug", "gepanzerte, grüne Zug", "Sonderzug", "Luxusgepanzerten Zug"],
        "Nordkoreas Machthaber Kim Jong Un ist laut südkoreanischen Medien mit einem gepanzerten Zug in Russland "
        "eingetroffen.",
    ),
    A(
        "Bei welcher Gelegenheit war Kim vor dieser Reise zuletzt im Ausland?",
        "de",
        [F3],
        ["Korea-Gipfels 2019", "entmilitarisierten Zone"],
        "Sein letzter Auslandsaufenthalt war während des Korea-Gipfels 2019 in der entmilitarisierten Zone, der von "
        "den USA unter der Trump-Regierung organisiert wurde.",
    ),
    A(
        "An welche russische Privatarmee soll Nordkorea laut Weißem Haus bereits Waffen verkauft haben?",
        "de",
        [F3],
        ["Wagner"],
        "Im Dezember teilte das Weiße Haus Reuters mit, dass Nordkorea auch Militärwaffen an die russische "
        "Söldnergruppe Wagner verkauft habe.",
    ),
    A(
        "Wie hat sich Moskau 2013 bei den UN zu Nordkoreas Atomtests verhalten?",
        "de",
        [F3],
        ["zwei Resolutionen der Vereinten Nationen"],
        "2013 unterstützte Russland zwei Resolutionen der Vereinten Nationen gegen Nordkorea wegen seiner Atomtests.",
    ),
    A(
        "Zu welchem Anlass reiste Russlands Verteidigungsminister im Juli nach Nordkorea?",
        "de",
        [F3, F4],
        ["70. Jahrestag", "Waffenstillstand"],
        "Im Juli reiste Schoigus anlässlich des 70. Jahrestages des Waffenstillstands im Korea-Krieg nach Nordkorea.",
    ),
    A(
        "Wo soll Nordkoreas neues Atom-U-Boot im Einsatz sein?",
        "de",
        [F4],
        ["zwischen Korea und Japan"],
        "Das U-Boot soll in den Gewässern zwischen Korea und Japan patrouillieren.",
    ),
    A(
        "Wie viele Personen umfasste die nordkoreanische Delegation, die im August nach Russland reiste?",
        "de",
        [F4],
        ["20-köpfige Delegation"],
        "Eine 20-köpfige Delegation aus Nordkorea sei nach Wladiwostok und Moskau gereist.",
    ),
    A(
        "Welche besetzten Gebiete erkennt Pjöngjang als russisch an?",
        "de",
        [F4],
        ["Krim", "Luhansk", "Donezk"],
        "Es erkannte etwa die besetzte Krim als russisch an, ebenso die selbst ernannten Volksrepubliken Luhansk und "
        "Donezk.",
    ),
    A(
        "Ohne die Zustimmung welchen Landes dürfte ein Waffendeal zwischen Moskau und Pjöngjang kaum zustande kommen?",
        "de",
        [F2, F4],
        ["China", "Segen Chinas"],
        "Ohne den Segen Chinas wird wohl nichts entschieden werden, zwischen Pekings beiden Junior-Partnern.",
    ),
    A(
        "Mit welchem Begriff fasst die ZDF-Korrespondentin das Bündnis von Putin und Kim zusammen?",
        "de",
        [F4],
        ["Allianz der Ausgestoßenen"],
        "Das Treffen mit Kim ist aber auch ein Zeichen dafür, in welche Kreise sich Putin durch seinen Angriffskrieg "
        "in der Ukraine begeben hat. Es ist eine Allianz der Ausgestoßenen.",
    ),
    A(
        "Auf welchem Weg sollen sich Kim und Putin über engere Militärbeziehungen ausgetauscht haben?",
        "de",
        [F4],
        ["heimlichen Briefen"],
        "Kim und Putin sollen sich außerdem in heimlichen Briefen über die Stärkung der Militär-Beziehungen "
        "ausgetauscht haben.",
    ),
    A(
        "Welcher IISS-Fachmann hält Nordkoreas Vorrat an alter Sowjetmunition für besonders groß?",
        "de",
        [F0],
        ["Joseph Dempsey"],
        "„Nordkorea verfügt wahrscheinlich über die größten Bestände an alten Geschossen sowjetischer Bauart“, "
        "vermutet Joseph Dempsey von der Denkfabrik International Institute für Strategic Studies (IISS).",
    ),
    A(
        "Als was wird Kim laut nordkoreanischer Staatsagentur bei Putin empfangen?",
        "de",
        [F0],
        ["respektierter Genosse"],
        "Und zwar als „respektierter Genosse“, wie Nordkoreas Staatsagentur KCNA stolz anmerkt.",
    ),
    A(
        "Welchem anderen Regime dürfte die neue Allianz zwischen Moskau und Pjöngjang ebenfalls gefallen?",
        "de",
        [F0],
        ["China", "kommunistischen Regime in China"],
        "Beim Treffen der Autokraten der beiden Länder in der ostsibirischen Hafenstadt geht es um lukrative "
        "Geschäftsdeals und eine Allianz, die auch dem kommunistischen Regime in China gut gefällt.",
    ),
    A(
        "Warum ist Russland überhaupt auf Munition aus Nordkorea angewiesen?",
        "de",
        [F1, F2, F3, F4],
        ["Geschosse rationiert", "schwindenden Reserven", "erschöpften Waffenbestands"],
        "Russische Militärs beklagen seit Wochen, dass Geschosse rationiert werden müssten und die Schlagkraft "
        "gegenüber den Streitkräften der Ukraine schrumpfe.",
    ),
    A(
        "Wovor hat der US-Präsident im Juli mit Blick auf Kiew gewarnt?",
        "de",
        [F3],
        ["der Ukraine die Munition ausgehe"],
        "Im Juli warnte Präsident Biden, dass der Ukraine die Munition ausgehe.",
    ),
    A(
        "Was könnte Nordkorea im Austausch für Waffenlieferungen von Russland bekommen?",
        "de",
        [F1, F2, F3, F4],
        [
            "Energie- und Nahrungsmittelhilfe",
            "fortschrittliche Waffentechnologien",
            "Weizenmehl- und Milchpulverlieferungen",
            "Lebensmittel",
            "Technik fürs Militär",
        ],
        "Im Gegenzug könnte Nordkorea dringend benötigte Energie- und Nahrungsmittelhilfe, sowie fortschrittliche "
        "Waffentechnologien erhalten",
    ),
    # ---------------- English, single-turn, answerable ----------------
    A(
        "Which minister is accompanying Kim Jong Un on his trip to Russia?",
        "en",
        [F2],
        ["Choe Sun Hui", "Außenministerin", "Foreign Minister Choe Sun Hui"],
        "Bilder zeigten, dass er unter anderem von Außenministerin Choe Sun Hui begleitet wird.",
    ),
    A(
        "According to Jake Sullivan, how long did Russia originally expect the war in Ukraine to last?",
        "en",
        [F3],
        ["in einer Woche", "one week"],
        "um seine Verteidigungsfähigkeit in einem Krieg zu stärken, von dem es erwartet hatte, dass er in einer Woche "
        "vorbei sein würde",
    ),
    A(
        "Whose cooperation is putting Kim under pressure, according to Nam Sung-wook?",
        "en",
        [F3],
        ["Südkorea, den USA und Japan", "South Korea, the US and Japan"],
        "während Kim unter dem Druck der trilateralen Kooperation zwischen Südkorea, den USA und Japan steht",
    ),
    A(
        "Which North Korean state news agency reported on Kim's plans to meet Putin?",
        "en",
        [F0, F3],
        ["KCNA"],
        "Auch die nordkoreanische Staatsmedien KCNA berichteten, dass Kim sich mit Putin „treffen und sprechen“ werde, "
        "gaben aber keine weiteren Details bekannt.",
    ),
    A(
        "Since when has Russia been sending regular shipments to North Korea?",
        "en",
        [F4],
        ["Seit Januar", "since January"],
        "Seit Januar diesen Jahres verschicke Russland regelmäßig Lieferungen nach Nordkorea.",
    ),
    A(
        "What did Shoigu reportedly ask Pyongyang for during his July visit, according to the US National Security "
        "Council?",
        "en",
        [F4],
        ["Waffenhilfe", "weapons assistance"],
        "Laut Nationalem Sicherheitsrat der USA habe er dabei auch um Waffenhilfe gebeten.",
    ),
    A(
        "What does Leif-Eric Easley say Kim needs Russian military technology for?",
        "en",
        [F3],
        ["Satellitenstarts", "Nuklearwaffenträgersysteme", "satellite launches", "nuclear weapons delivery systems"],
        "Russland verfügt über die Militärtechnologie, die Kim für seine illegalen Satellitenstarts und "
        "Nuklearwaffenträgersysteme benötigt.",
    ),
    A(
        "What is the name of the new submarine North Korea unveiled?",
        "en",
        [F4],
        ["Hero Kim Kun Ok"],
        "Seine elefantengraue Hülle wurde auf Hochglanz poliert, bunte Fahnen rahmen ihn feierlich ein. Sein Name: "
        "Hero Kim Kun Ok.",
    ),
    # ---------------- multi-turn, answerable ----------------
    A(
        "Und wie viele Raketen mit Atomsprengköpfen soll es abfeuern können?",
        "de",
        [F4],
        ["bis zu zehn Raketen", "zehn Raketen"],
        "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern.",
        history=["Welche militärische Neuheit hat Nordkorea kurz vor Kims Reise präsentiert?"],
    ),
    A(
        "Und welche Rakete hat er sich bei dem Besuch angesehen?",
        "de",
        [F3],
        ["Hwasong-Interkontinentalrakete", "Hwasong"],
        "Dabei beobachtete Shogu die Hwasong-Interkontinentalrakete zusammen mit anderen neuen Drohnendesigns.",
        history=["Welcher russische Minister war im Sommer in Nordkorea zu Gast?"],
    ),
    A(
        "What did he accuse Putin of doing?",
        "en",
        [F2],
        ["um Hilfe zu betteln", "unterwürfig", "begging for help"],
        "Putin würde „unterwürfig“ durch sein ganzes Land reisen, um beim „international geächteten“ Kim Jong-un „um "
        "Hilfe zu betteln“",
        history=["Who spoke for the US State Department about the Putin-Kim meeting?"],
    ),
    A(
        "Who suggested that, and where is he from?",
        "en",
        [F2],
        ["Kang Dong-wan", "Busan"],
        "Russland könnte mit mehr Weizenmehl- und Milchpulverlieferungen helfen, so Kang Dong-wan, Nordkorea-Experte "
        "aus Busan.",
        history=["Why is food such a problem for North Korea right now?", "What could Russia send to help with that?"],
    ),
    A(
        "Und warum könnte Russland sie so leicht einsetzen?",
        "de",
        [F0, F1, F2, F4],
        ["ohne größere Anpassungen", "ohne weitere Vorbereitung oder Anpassung", "kompatibel"],
        "Russland könnte diese Geschosse ohne größere Anpassungen des eigenen Waffensystems für seinen Angriffskrieg "
        "gegen die Ukraine einsetzen.",
        history=[
            "Welche Kurzstreckenraketen könnten für Russland interessant sein?",
            "Welchem russischen System ähneln sie?",
        ],
    ),
    A(
        "Und was ist für ihn die entscheidende Frage bei den Lieferungen?",
        "de",
        [F2],
        ["begrenzte Mengen", "zuverlässige, beständige Versorgung"],
        "Die Frage sei also, ob es sich bei Waffenlieferungen Nordkoreas um „begrenzte Mengen oder um eine "
        "zuverlässige, beständige Versorgung handelt“",
        history=[
            "Was sagt Jack Watling vom Royal United Services Institute zur Unterstützung Russlands durch Nordkorea?"
        ],
    ),
    # ---------------- unanswerable ----------------
    U("Wie alt ist Kim Jong-un?", "de"),
    U("Mit wie vielen Kilometern pro Stunde fährt Kims Panzerzug?", "de"),
    U("Which agreements did Putin and Kim sign in Vladivostok?", "en"),
    U("Wie viele Einwohner hat Wladiwostok?", "de"),
    U("What was the weather like in Vladivostok when Kim arrived?", "en"),
    U("How much is Russia paying North Korea for the artillery ammunition?", "en"),
    U("Wie viele Atomsprengköpfe besitzt Nordkorea insgesamt?", "de"),
    U("How many North Korean workers are currently employed in Russia?", "en"),
    U("Wie hat der südkoreanische Präsident auf Kims Reise reagiert?", "de"),
    U("Aus wie vielen Waggons besteht Kims Sonderzug?", "de"),
    U("How many people are travelling with Kim in his delegation on this trip?", "en"),
    U("Wie viele Tage soll Kims Aufenthalt in Russland insgesamt dauern?", "de"),
]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write the gold set as JSON lines.")
    parser.add_argument("out", help="where to write, e.g. eval/gold.jsonl")
    out = parser.parse_args().out
    with open(out, "w", encoding="utf-8") as f:
        for i, it in enumerate(items, 1):
            rec = {"id": f"g{i:03d}"}
            rec.update(
                {k: it[k] for k in ["question", "history", "lang", "answerable", "sources", "answers", "evidence"]}
            )
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(len(items), "items written to", out)


if __name__ == "__main__":
    main()
