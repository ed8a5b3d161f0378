# workload.pl - hashes, strings, regexes, sort, references; prints results
# and digests that must not depend on the allocator.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

my @words = qw(apple banana cherry damson elder fig grape hazel iris juniper kiwi lemon);

# Hashes: build, grow, delete, nested.
my %h;
for my $i (1 .. 100_000) {
	my $k = sprintf("key-%06d-%s", $i, $words[rnd() % @words]);
	$h{$k} = { n => $i, w => [ map { $words[rnd() % @words] } 1 .. 3 ] };
}
delete $h{$_} for grep { /-(?:fig|kiwi)$/ } keys %h;
my %count;
for my $v (values %h) { $count{$_}++ for @{ $v->{w} }; }
print "hash ", scalar(keys %h), " ", join(",", map { "$_=$count{$_}" } sort keys %count), "\n";

# Strings: build a large text, substitute, split, join.
my $text = join(" ", map { $words[rnd() % @words] . ($_ % 97) } 1 .. 200_000);
(my $t2 = $text) =~ s/(\w+?)(\d+)/\U$1\E<$2>/g;
my @parts = split /\s+/, $t2;
my $joined = join("|", reverse @parts[0 .. 999]);
my $s = "";
$s .= chr(65 + $_ % 26) x ($_ % 7) for 1 .. 50_000;
print "strings ", length($text), " ", length($t2), " ", scalar(@parts), " ", md5_hex($joined), " ", length($s), "\n";

# Regexes: captures, global matches, tr.
my %seen;
while ($text =~ /\b([a-z]*?[ae][a-z]*)(\d{2})\b/g) { $seen{$1}{$2}++; }
my $caps = 0;
$caps += scalar(keys %{ $seen{$_} }) for keys %seen;
(my $t3 = $text) =~ tr/a-e/A-E/;
my $vowels = () = $t3 =~ /[AEIOU]/g;
print "regex ", scalar(keys %seen), " $caps $vowels ", md5_hex(substr($t3, 0, 5000)), "\n";

# Sort: numeric, string, Schwartzian transform, custom.
my @nums = map { rnd() % 1_000_000 } 1 .. 200_000;
my @sn = sort { $a <=> $b } @nums;
my @ss = sort @parts[0 .. 49_999];
my @st = map { $_->[1] } sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] }
	map { [ length($_), $_ ] } keys %h;
print "sort $sn[0] $sn[-1] $sn[100000] ", md5_hex(join(",", @sn[0 .. 999])), " ",
	md5_hex(join(",", @ss[0 .. 999])), " $st[0] $st[-1]\n";

# References and closures: a tree of arrays, built and freed repeatedly.
my $total = 0;
for my $round (1 .. 20) {
	my @tree = map { [ $_, [ ($_) x ($_ % 10) ], { id => "n$_" } ] } 1 .. 10_000;
	my @subs = map { my $n = $_; sub { $n * $round } } 1 .. 1000;
	$total += $_->() for @subs;
	$total += scalar(@{ $_->[1] }) for @tree;
}
print "refs $total\n";
